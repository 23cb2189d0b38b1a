package fleet

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// applyBodies decodes webhook bodies as the writer does, and applies each
// as one group, received at fixture.Now.
func applyBodies(b testing.TB, f *Fleet, bodies []string) {
	b.Helper()
	var st Staging
	for _, body := range bodies {
		events, err := event.Decode([]byte(body), event.DefaultDecodeOptions, fixture.Now)
		if err != nil {
			b.Fatal(err)
		}
		st.Reset(f, DefaultLimits)
		st.Received(fixture.Now.UnixMilli())
		for i := range events {
			st.Apply(&events[i])
		}
		f.Publish(&st)
	}
}

// benchFleet builds a fleet of n servers spread over origins, deployments and
// regions, as a real one is.
func benchFleet(b testing.TB, n int) *Fleet {
	f := New()
	applyBodies(b, f, fixture.ServerBodies(n))
	return f
}

// fillHistories applies HistoryLen more lifecycle events to each of the n
// servers of benchFleet, in batches.
func fillHistories(b *testing.B, f *Fleet, n int) {
	b.Helper()
	actions := []string{"started", "registered", "unregistered", "registered", "stopped"}
	bodies := make([]string, n)
	for i := range n {
		var batch []string
		for k := range HistoryLen {
			batch = append(batch, fixture.EventJSON(fixture.Now.UnixMilli()+int64(k+1), fixture.ServerOrigin(i), actions[k%len(actions)],
				fmt.Sprintf(`{"id":%q}`, fixture.ServerID(i))))
		}
		bodies[i] = "[" + strings.Join(batch, ",") + "]"
	}
	applyBodies(b, f, bodies)
}

// BenchmarkApply measures applying one decoded event to a fleet of 10,000
// servers: the rule, the staging and the publication, without the store.
func BenchmarkApply(b *testing.B) {
	f := benchFleet(b, 10000)
	snap := f.Snapshot()
	events := make([]event.Event, len(snap.Servers))
	for i, s := range snap.Servers {
		events[i] = event.Event{Kind: event.KindLifecycle, Origin: s.Origin, Server: s.Info}
	}
	b.ReportAllocs()
	var st Staging // reused group after group, as the writer's folder does
	i := 0
	for b.Loop() {
		ev := &events[i%len(events)]
		ev.Timestamp = fixture.Now.UnixMilli() + int64(i)
		ev.Action = event.Action(i % int(event.NumActions))
		st.Reset(f, Limits{MaxServers: 20000})
		st.Apply(ev)
		f.Publish(&st)
		i++
	}
}

// BenchmarkFleetMemory reports the heap a tracked server costs, with a fleet
// of 10,000 servers built from webhook bodies, decoded and applied as the
// writer does. With history=20 every server also holds a full history of
// lifecycle events, the most a long-lived server costs.
func BenchmarkFleetMemory(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%d", boolInt(full)*(HistoryLen-1)+1), func(b *testing.B) { fleetMemory(b, full) })
	}
}

func fleetMemory(b *testing.B, fullHistory bool) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f := benchFleet(b, 10000)
		if fullHistory {
			fillHistories(b, f, 10000)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(f.Len()), "heap-bytes/server")
		runtime.KeepAlive(f)
	}
}
