package storage

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadAll(t *testing.T, s Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := s.Load(context.Background(), func(k string, v []byte) error {
		got[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBoltCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Commit(ctx, &Batch{Puts: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &Batch{Puts: map[string][]byte{"a": []byte("3")}, Deletes: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	if got := loadAll(t, s); len(got) != 1 || got["a"] != "3" {
		t.Fatalf("after reopening: %v", got)
	}
}

func TestBoltOpenFailures(t *testing.T) {
	locked := t.TempDir()
	holder, err := OpenBolt(locked, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, FileName), []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, reason string
	}{
		{"locked by another process", locked, "locked by another process"},
		{"corrupt file", corrupt, "opening storage file"},
		{"directory cannot be created", filepath.Join(notADir, "data"), "creating storage directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenBolt(tc.dir, nil)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestBoltCommitAfterCloseFails(t *testing.T) {
	s, err := OpenBolt(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Commit(context.Background(), &Batch{Puts: map[string][]byte{"a": nil}}); err == nil {
		t.Fatal("commit on a closed store succeeded")
	}
}

// TestBoltLogAndCompaction commits more batches than trigger a compaction,
// with overwrites and deletes: every Load, before and after compactions and
// across a reopen, shows the same net state.
func TestBoltLogAndCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string]string{}
	for i := range compactEvery*2 + 37 {
		b := &Batch{Puts: map[string][]byte{}}
		for j := range 5 {
			k := fmt.Sprintf("mediaserver/%d", (i*5+j)%700)
			v := fmt.Sprintf("v%d-%d", i, j)
			b.Puts[k] = []byte(v)
			want[k] = v
		}
		if i%3 == 0 {
			k := fmt.Sprintf("mediaserver/%d", (i*7)%700)
			if _, put := b.Puts[k]; !put {
				b.Deletes = append(b.Deletes, k)
				delete(want, k)
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := loadAll(t, s); !maps.Equal(got, want) {
		t.Fatalf("before closing: %d records, want %d", len(got), len(want))
	}
	s = reopen(t, s, dir)
	defer s.Close()
	if got := loadAll(t, s); !maps.Equal(got, want) {
		t.Fatalf("after reopening: %d records, want %d", len(got), len(want))
	}
	if s.pending != 0 {
		t.Fatalf("%d batches left in the log after a clean close", s.pending)
	}
}

func TestBatchCodec(t *testing.T) {
	b := &Batch{Puts: map[string][]byte{"a/1": []byte("x"), "b/2": {}, "c/é": []byte(strings.Repeat("y", 300))}, Deletes: []string{"d/4", ""}}
	got, err := decodeBatch(encodeBatch(b))
	if err != nil || len(got.Puts) != 3 || string(got.Puts["c/é"]) != strings.Repeat("y", 300) || len(got.Deletes) != 2 || got.Deletes[0] != "d/4" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	enc := encodeBatch(b)
	for _, bad := range [][]byte{enc[:len(enc)-1], append(enc, 0), {0xff}, {0x05, 0x01}} {
		if _, err := decodeBatch(bad); err == nil {
			t.Errorf("%x decoded without error", bad)
		}
	}
}

// reopen closes s cleanly and opens the store in dir again.
func reopen(t *testing.T, s *Bolt, dir string) *Bolt {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBolt(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
