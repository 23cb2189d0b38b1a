package collector

import (
	"context"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

func TestHistoryKeepsTheLastEventsNewestFirst(t *testing.T) {
	fleet, w, clock := newLimitedWriter(t, nil, Limits{})
	actions := []string{"started", "registered", "unregistered", "registered", "stopped"}
	const n = HistoryLen + 7
	for i := range n {
		fixture.Ingest(t, w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", actions[i%len(actions)], `{"id":"ms-1"}`))
		clock.Advance(time.Minute)
	}
	// A heartbeat and a late delivery change no history.
	fixture.Ingest(t, w, fixture.EventJSON(fixture.At(n*time.Second), "mediaserver", "stats", `{"id":"ms-1"}`))
	fixture.Ingest(t, w, fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"ms-1"}`))

	s, events, ok := fleet.Server(Key{"mediaserver", "ms-1"})
	if !ok || s.Info.ID != "ms-1" {
		t.Fatal("server not found")
	}
	if len(events) != HistoryLen {
		t.Fatalf("%d events kept, want %d", len(events), HistoryLen)
	}
	for i, e := range events {
		k := n - 1 - i // newest first
		want := AppliedEvent{Action: mustAction(t, actions[k%len(actions)]), EventMs: fixture.At(time.Duration(k) * time.Second),
			ReceivedMs: fixture.Now.Add(time.Duration(k) * time.Minute).UnixMilli()}
		if e != want {
			t.Fatalf("event %d is %+v, want %+v", i, e, want)
		}
	}
	if _, err := w.Forget(context.Background(), Key{"mediaserver", "ms-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := fleet.Server(Key{"mediaserver", "ms-1"}); ok || len(fleet.history) != 0 {
		t.Fatal("a forgotten server keeps its history")
	}
}

func mustAction(t *testing.T, s string) event.Action {
	for a := range event.NumActions {
		if a.String() == s {
			return a
		}
	}
	t.Fatalf("no action %q", s)
	return 0
}
