package storage

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkBoltCommit measures one durable commit (append, fsync) of a group
// of 64 server records of realistic size: the floor under the acknowledge
// latency of the durable exporter.
func BenchmarkBoltCommit(b *testing.B) {
	s, err := OpenBolt(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 400)
	i := 0
	for b.Loop() {
		batch := &Batch{Puts: make(map[string][]byte, 64)}
		for range 64 {
			batch.Puts[fmt.Sprintf("mediaserver/%08d", i%10000)] = value
			i++
		}
		if err := s.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
