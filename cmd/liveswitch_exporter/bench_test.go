package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// BenchmarkIngest measures acknowledged events per second of the real binary
// on loopback, fed by the simulator with distinct, growing servers, at 1, 16
// and 64 concurrent senders, with the durable store and in memory.
//
//	go test ./cmd/liveswitch_exporter -run '^$' -bench Ingest -benchtime 20000x
func BenchmarkIngest(b *testing.B) {
	for _, store := range []struct{ name, flag string }{
		{"durable", ""}, // startExporter gives each run a fresh store
		{"in-memory", "--storage.in-memory"},
	} {
		for _, senders := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("storage=%s/senders=%d", store.name, senders), func(b *testing.B) {
				args := []string{"--server.max=0"}
				if store.flag != "" {
					args = append(args, store.flag)
				}
				p := startExporter(b, args...)
				gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
				gen.Grow = true
				b.ResetTimer()
				rep := simulate.Run(context.Background(), gen, simulate.LoadConfig{
					Target: p.url("/webhook"), Concurrency: senders, Count: b.N,
				})
				b.StopTimer()
				if rep.Acked() != b.N {
					b.Fatalf("%d of %d events acknowledged: %v", rep.Acked(), b.N, rep.ByStatus)
				}
				b.ReportMetric(float64(rep.Acked())/rep.Elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(rep.Percentile(99))/float64(time.Millisecond), "p99-ms")
			})
		}
	}
}
