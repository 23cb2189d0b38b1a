package writer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

// benchWriter is a writer of a new fleet, in memory or on a store of its
// own, closed when the benchmark ends.
func benchWriter(b *testing.B, durable bool) *Writer {
	b.Helper()
	var store storage.Store
	if durable {
		s, err := embedded.Open(b.TempDir(), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		store = s
	}
	w := New(fleet.New(), store, Options{Decode: event.DefaultDecodeOptions})
	b.Cleanup(w.Close)
	return w
}

// BenchmarkIngestParallel measures Writer.Ingest from 64 concurrent callers,
// each event a new server, in memory and with the bbolt store: the cost of
// the domain and of durability without HTTP.
func BenchmarkIngestParallel(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			w := benchWriter(b, durable)
			var n atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fixture.EventJSON(fixture.Now.UnixMilli(), "mediaserver", "registered", fmt.Sprintf(
						`{"id":"ms-%d","version":"1.24.2.0","machineName":"ms-%d","coreCount":16,"region":"us-east","deploymentId":"prod"}`, i, i))
					if _, err := w.Ingest(context.Background(), []byte(body)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
