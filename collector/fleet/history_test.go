package fleet

import (
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// publish stages on f, as one group, what stage does, and publishes it, as
// the writer does with each group of commands.
func publish(f *Fleet, limits Limits, stage func(st *Staging)) *Staging {
	st := new(Staging)
	st.Reset(f, limits)
	stage(st)
	f.Publish(st)
	return st
}

func TestHistoryKeepsTheLastEventsNewestFirst(t *testing.T) {
	f := New()
	apply := func(ev event.Event, receivedMs int64) {
		publish(f, Limits{}, func(st *Staging) { st.Received(receivedMs); st.Apply(&ev) })
	}
	actions := []event.Action{event.ActionStarted, event.ActionRegistered, event.ActionUnregistered, event.ActionRegistered, event.ActionStopped}
	const n = HistoryLen + 7
	for i := range n {
		apply(lifecycleEvent("mediaserver", "ms-1", actions[i%len(actions)], fixture.At(time.Duration(i)*time.Second)),
			fixture.Now.Add(time.Duration(i)*time.Minute).UnixMilli())
	}
	// A heartbeat and a late delivery change no history.
	later := fixture.Now.Add(n * time.Minute).UnixMilli()
	apply(event.Event{Timestamp: fixture.At(n * time.Second), Type: "mediaserver.stats", Kind: event.KindHeartbeat,
		Origin: "mediaserver", Server: event.Info{ID: "ms-1"}}, later)
	apply(lifecycleEvent("mediaserver", "ms-1", event.ActionStarted, fixture.At(0)), later)

	s, events, ok := f.Server(Key{"mediaserver", "ms-1"})
	if !ok || s.Info.ID != "ms-1" {
		t.Fatal("server not found")
	}
	if len(events) != HistoryLen {
		t.Fatalf("%d events kept, want %d", len(events), HistoryLen)
	}
	for i, e := range events {
		k := n - 1 - i // newest first
		want := AppliedEvent{Action: actions[k%len(actions)], EventMs: fixture.At(time.Duration(k) * time.Second),
			ReceivedMs: fixture.Now.Add(time.Duration(k) * time.Minute).UnixMilli()}
		if e != want {
			t.Fatalf("event %d is %+v, want %+v", i, e, want)
		}
	}
	publish(f, Limits{}, func(st *Staging) { st.Forget(Key{"mediaserver", "ms-1"}) })
	if _, _, ok := f.Server(Key{"mediaserver", "ms-1"}); ok || len(f.history) != 0 {
		t.Fatal("a forgotten server keeps its history")
	}
}
