package embedded

import (
	"context"
	"fmt"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// BenchmarkCommit measures one durable commit (one atomic batch, synced to
// the write-ahead log) of a group of 64 server records of realistic size
// over a store of 10,000: the floor under the acknowledge latency of the
// durable exporter.
func BenchmarkCommit(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 400)
	i := 0
	for b.Loop() {
		batch := &storage.Batch{Puts: make(map[string][]byte, 64)}
		for range 64 {
			batch.Puts[fmt.Sprintf("mediaserver/%08d", (i*7919)%10000)] = value
			i++
		}
		if err := s.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
