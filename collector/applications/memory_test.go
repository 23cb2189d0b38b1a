package applications

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// heapAfterGC is the live heap, in bytes, once the garbage is collected.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryFlatUnderNeverConnectingConnections: 1,000,000 connections
// initialize and never connect. The pending table holds its cap (100,000)
// and no more, and the heap stays where it was once the table was full.
// Run with -v for the figures.
func TestMemoryFlatUnderNeverConnectingConnections(t *testing.T) {
	const total, maxPending, step = 1_000_000, DefaultMaxPending, 1000
	tr, _ := newTestTracker(t, DefaultMaxApplications, maxPending)
	events := make([]event.ApplicationEvent, step)
	feed := func(from, to int) {
		for i := from; i < to; i += step {
			for j := range events {
				events[j] = event.ApplicationEvent{Timestamp: t0.UnixMilli() + int64(i+j), Type: initializing,
					ApplicationID: fmt.Sprintf("app-%d", (i+j)%3), ConnectionID: fmt.Sprintf("%08x-7d1f-4a7e-9a51-2f3c6e0d9a10", i+j),
					ConnectionType: "sfu"}
			}
			if res := tr.apply(events, testNow); res.Outcomes[fleet.OutcomeApplied] != step {
				t.Fatalf("%s", res)
			}
		}
	}
	before := heapAfterGC()
	feed(0, 2*maxPending) // the table is full, and has evicted as many
	full := heapAfterGC()
	feed(2*maxPending, total)
	after := heapAfterGC()
	t.Logf("heap: %.1f MiB empty, %.1f MiB after %d connections (table full), %.1f MiB after %d; %d pending, %d evicted",
		mib(before), mib(full), 2*maxPending, mib(after), total, tr.pending.len(), tr.pending.dropped[DropEvicted])
	if tr.pending.len() != maxPending || tr.pending.dropped[DropEvicted] != total-maxPending {
		t.Fatalf("%d pending, %d evicted", tr.pending.len(), tr.pending.dropped[DropEvicted])
	}
	// Flat: the last 800,000 connections add nothing but noise (a few
	// hundred KiB of runtime bookkeeping) to the heap of a full table.
	if after > full+(1<<20) {
		t.Fatalf("the heap grew from %.1f MiB to %.1f MiB while the table stayed full", mib(full), mib(after))
	}
	runtime.KeepAlive(tr)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// BenchmarkIngest measures counting one connection event from its body:
// decoding, the application cap, the counters and the pending table.
func BenchmarkIngest(b *testing.B) {
	tr, _ := newTestTracker(b, DefaultMaxApplications, DefaultMaxPending)
	bodies := make([][]byte, 1024)
	for i := range bodies {
		typ := []string{"connection.initializing", "connection.connected"}[i%2]
		bodies[i] = []byte(appEvent(int64(i), typ, "app-"+fmt.Sprint(i%3), fmt.Sprintf("c-%d", i/2), "sfu"))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tr.Ingest(bodies[i%len(bodies)], nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
