package callstate

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// testNow is the exporter's clock of the test, a minute after the events'
// t0.
var testNow = time.UnixMilli(1700000000000).Add(time.Minute)

// longMode runs the long sweeps (LIVESWITCH_TEST_LONG=1).
var longMode = os.Getenv("LIVESWITCH_TEST_LONG") != ""

// heapAfterGC is the live heap, in bytes, once the garbage is collected.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryFlatUnderNeverEndingEntries: channels activate and
// connections initialize and never end (1,000,000 of each in long mode,
// 500,000 otherwise), each event distinct, over the last 50 minutes. The
// tables hold their caps and no more, the memory of events its cap, and
// the heap stays where it was once all were full (after 400,000 of each:
// 16,000 events a minute, more than the memory keeps). Run with -v for the
// figures.
func TestMemoryFlatUnderNeverEndingEntries(t *testing.T) {
	const fill = 400_000
	total := 500_000
	if longMode {
		total = 1_000_000
	}
	const step = 1000
	limits := Limits{MaxEntries: [NumTables]int{DefaultMaxPending, DefaultMaxChannels, DefaultMaxClients}, MaxRemembered: DefaultMaxRemembered}.WithDefaults()
	s := NewMemory(limits).(*memoryState)
	facts := make([]Fact, 2*step)
	effects := make([]Effect, 2*step)
	var drops Drops
	feed := func(from, to int) {
		for i := from; i < to; i += step {
			for j := range step {
				n := i + j
				app := "app-" + strconv.Itoa(n%3)
				id := fmt.Sprintf("%08x-7d1f-4a7e-9a51-2f3c6e0d9a10", n)
				// Event times spread over the last 50 minutes, so that the
				// memory of events fills all its minutes.
				ms := testNow.UnixMilli() - int64(n%3000)*1000
				facts[2*j] = Fact{App: app, Op: OpConnectionStart, Entity: EntityKey(TableConnections, app, id),
					Seen: EventKey(app, "connection.initializing", ms, id, "", ""), Ms: ms}
				facts[2*j+1] = Fact{App: app, Op: OpChannelOn, Entity: EntityKey(TableChannels, app, id),
					Seen: EventKey(app, "channel.activated", ms, "", id, ""), Ms: ms}
			}
			d, _ := s.Apply(context.Background(), facts, testNow, effects)
			drops.Add(d)
		}
	}
	before := heapAfterGC()
	feed(0, fill) // the tables and the memory of events are full
	full := heapAfterGC()
	feed(fill, total)
	after := heapAfterGC()
	sizes, _ := s.Sizes(context.Background(), testNow)
	t.Logf("heap: %.1f MiB empty, %.1f MiB after %d channels and connections (all full), %.1f MiB after %d; "+
		"%d connections and %d channels held, %d events remembered, evicted %v",
		mib(before), mib(full), fill, mib(after), total, sizes.Entries[TableConnections], sizes.Entries[TableChannels],
		sizes.Remembered, drops)
	for _, tb := range []Table{TableConnections, TableChannels} {
		if sizes.Entries[tb] != int64(limits.MaxEntries[tb]) || drops[tb][DropEvicted] != uint64(total-limits.MaxEntries[tb]) {
			t.Fatalf("%s: %d held, %d evicted", tb, sizes.Entries[tb], drops[tb][DropEvicted])
		}
	}
	if rememberedMax := limits.PerBucket() * limits.RememberBuckets(); sizes.Remembered > rememberedMax {
		t.Fatalf("%d events remembered, more than %d", sizes.Remembered, rememberedMax)
	}
	// Flat: what comes once all is full adds nothing but noise (runtime
	// bookkeeping) to the heap.
	if after > full+(2<<20) {
		t.Fatalf("the heap grew from %.1f MiB to %.1f MiB while the tables stayed full", mib(full), mib(after))
	}
	runtime.KeepAlive(s)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
