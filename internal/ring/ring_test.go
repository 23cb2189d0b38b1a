package ring

import (
	"slices"
	"testing"
)

func TestBufferKeepsTheLastValues(t *testing.T) {
	for _, tc := range []struct {
		size, added int
		want        []int
	}{
		{3, 0, []int{}},
		{3, 2, []int{1, 0}},
		{3, 3, []int{2, 1, 0}},
		{3, 4, []int{3, 2, 1}},
		{3, 10, []int{9, 8, 7}},
		{1, 5, []int{4}},
		{20, 20, []int{19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
	} {
		b := New[int](tc.size)
		for i := range tc.added {
			b.Add(i)
		}
		if got := b.NewestFirst(); !slices.Equal(got, tc.want) || b.Len() != len(tc.want) {
			t.Errorf("size %d after %d: %v, want %v", tc.size, tc.added, got, tc.want)
		}
		if cap(b.buf) > tc.size {
			t.Errorf("size %d after %d: holds room for %d values", tc.size, tc.added, cap(b.buf))
		}
	}
}
