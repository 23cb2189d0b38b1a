package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// observationAt is an observation at d after the test clock's start, with a
// 15 s interval, listing the given media servers.
func observationAt(d time.Duration, servers ...MediaServerFacts) *Observation {
	return &Observation{AtMs: fixture.At(d), IntervalMs: (15 * time.Second).Milliseconds(), MediaServers: servers}
}

func TestReconcile(t *testing.T) {
	listed := MediaServerFacts{ID: "m", Region: "eu", DeploymentID: "d", Version: "1.24", CoreCount: 8, UsedCapacity: fixture.Ptr(0.5)}
	held := func(state State, since time.Duration) *Server {
		return &Server{Origin: "mediaserver", Info: event.Info{ID: "m", MachineName: "ms-a"}, State: state,
			LastActionMs: fixture.At(since), LastAction: event.ActionStarted, LastEventMs: fixture.At(since), Events: [event.NumActions]uint64{1}, Flaps: 2}
	}
	poll := 10 * time.Minute
	for _, tc := range []struct {
		name   string
		prev   *Server
		want   State
		change Change
		ok     bool
	}{
		{"unknown: created registered", nil, StateRegistered, ChangeCreated, true},
		{"running for three intervals: missed registered", held(StateRunning, poll-45*time.Second), StateRegistered, ChangeRegistered, true},
		{"unregistered for long: missed registered", held(StateUnregistered, 0), StateRegistered, ChangeRegistered, true},
		{"stopped for long: missed started and registered", held(StateStopped, 0), StateRegistered, ChangeRegistered, true},
		{"running for exactly two intervals: the list may lag", held(StateRunning, poll-30*time.Second), StateRunning, 0, false},
		{"unregistered a moment ago: the list may lag", held(StateUnregistered, poll-time.Second), StateUnregistered, 0, false},
		{"state entered after the poll began", held(StateStopped, poll+time.Second), StateStopped, 0, false},
		{"registered already", held(StateRegistered, 0), StateRegistered, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before Server
			if tc.prev != nil {
				before = *tc.prev
			}
			o := observationAt(poll, listed)
			next, change, ok := Reconcile(tc.prev, &listed, o)
			if ok != tc.ok || change != tc.change || next.State != tc.want {
				t.Fatalf("got %v %v %v, want %v %v %v", next.State, change, ok, tc.want, tc.change, tc.ok)
			}
			if tc.prev != nil && *tc.prev != before {
				t.Fatal("Reconcile modified the record it was given")
			}
			if !ok {
				if next != tc.prev {
					t.Fatal("an unchanged server must be the same record")
				}
				return
			}
			if next.SinceMs() != o.AtMs || next.ReconciledMs != o.AtMs || next.StateReceivedMs != o.AtMs {
				t.Fatalf("not stamped with the poll time: %+v", next)
			}
			// A poll is no event: the order of real events stays theirs.
			wantAction, wantActionMs, wantEventMs := event.Action(0), int64(0), o.AtMs
			if tc.prev != nil {
				wantAction, wantActionMs, wantEventMs = tc.prev.LastAction, tc.prev.LastActionMs, tc.prev.LastEventMs
			}
			if next.LastAction != wantAction || next.LastActionMs != wantActionMs || next.LastEventMs != wantEventMs {
				t.Fatalf("the poll moved the order of real events: %+v", next)
			}
			if next.Info.Region != "eu" || next.Info.DeploymentID != "d" || next.Info.CoreCount != 8 || next.Info.Version != "1.24" {
				t.Fatalf("facts of the API not taken: %+v", next.Info)
			}
			if tc.prev != nil && (next.Events != tc.prev.Events || next.Flaps != tc.prev.Flaps || next.Info.MachineName != "ms-a") {
				t.Fatalf("a correction is no event and keeps what webhooks told: %+v", next)
			}
		})
	}
}

func TestObservationValidate(t *testing.T) {
	ok := func() *Observation {
		return &Observation{AtMs: fixture.At(0), IntervalMs: 1000,
			MediaServers: []MediaServerFacts{{ID: "a", UsedCapacity: fixture.Ptr(1.2)}, {ID: "b"}},
			Applications: []ApplicationFacts{{ID: "app", Channels: fixture.Ptr(int64(3))}}}
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("a valid observation: %v", err)
	}
	for name, spoil := range map[string]func(*Observation){
		"no time":                func(o *Observation) { o.AtMs = 0 },
		"no interval":            func(o *Observation) { o.IntervalMs = 0 },
		"empty id":               func(o *Observation) { o.MediaServers[0].ID = "" },
		"id twice":               func(o *Observation) { o.MediaServers[1].ID = "a" },
		"control character":      func(o *Observation) { o.MediaServers[0].ID = "a\nb" },
		"id too long":            func(o *Observation) { o.MediaServers[0].ID = string(make([]byte, 300)) },
		"region with a NUL":      func(o *Observation) { o.MediaServers[0].Region = "eu\x00" },
		"negative capacity":      func(o *Observation) { o.MediaServers[0].UsedCapacity = fixture.Ptr(-0.1) },
		"absurd capacity":        func(o *Observation) { o.MediaServers[0].UsedCapacity = fixture.Ptr(1e9) },
		"negative cores":         func(o *Observation) { o.MediaServers[0].CoreCount = -1 },
		"application id twice":   func(o *Observation) { o.Applications = append(o.Applications, ApplicationFacts{ID: "app"}) },
		"application id empty":   func(o *Observation) { o.Applications[0].ID = "" },
		"negative channel count": func(o *Observation) { o.Applications[0].Channels = fixture.Ptr(int64(-1)) },
	} {
		o := ok()
		spoil(o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRealEventsWinOverPolls: a poll of the Gateway is stamped with the
// exporter's clock, LiveSwitch's events with LiveSwitch's. Whichever clock is
// ahead, a real event delivered after a poll is never taken for older news
// because of the poll, while real events keep their own order. Each case
// runs with LiveSwitch's clock 5 s behind, equal to and 5 s ahead of the
// exporter's.
func TestRealEventsWinOverPolls(t *testing.T) {
	const interval = 15 * time.Second
	type step struct {
		at     time.Duration // by the exporter's clock
		poll   bool          // a poll listing the server; else a real event
		action event.Action
		// stampedBefore is how long before it is delivered LiveSwitch
		// stamped the event, by LiveSwitch's own clock.
		stampedBefore time.Duration
		want          Outcome // of a real event
	}
	for _, tc := range []struct {
		name  string
		steps []step
		state State
	}{
		{"a stop stamped before the poll that created the server", []step{
			{at: time.Minute, poll: true},
			{at: time.Minute + time.Second, action: event.ActionStopped, stampedBefore: 4 * time.Second, want: OutcomeApplied},
		}, StateStopped},
		{"an unregistration after a reconciliation", []step{
			{at: 0, action: event.ActionStarted, want: OutcomeApplied},
			{at: time.Minute, poll: true}, // registered: the registered webhook was lost
			{at: time.Minute + time.Second, action: event.ActionUnregistered, stampedBefore: 500 * time.Millisecond, want: OutcomeApplied},
		}, StateUnregistered},
		{"a late event older than the last real one stays out of order", []step{
			{at: 0, action: event.ActionStarted, stampedBefore: 0, want: OutcomeApplied},
			{at: time.Minute, poll: true},
			{at: time.Minute + time.Second, action: event.ActionRegistered, stampedBefore: 2 * time.Minute, want: OutcomeOutOfOrder},
		}, StateRegistered},
		{"a poll within two intervals of a real state leaves it", []step{
			{at: 0, action: event.ActionStarted, want: OutcomeApplied},
			{at: time.Minute, action: event.ActionUnregistered, want: OutcomeApplied},
			{at: time.Minute + 2*interval, poll: true},
		}, StateUnregistered},
		{"a poll two intervals after a real state corrects it, and the next real event wins", []step{
			{at: 0, action: event.ActionStarted, want: OutcomeApplied},
			{at: time.Minute, action: event.ActionUnregistered, want: OutcomeApplied},
			{at: time.Minute + 2*interval + time.Second, poll: true},
			{at: 2 * time.Minute, action: event.ActionStopped, stampedBefore: 10 * time.Second, want: OutcomeApplied},
		}, StateStopped},
	} {
		for _, skew := range []time.Duration{-5 * time.Second, 0, 5 * time.Second} {
			t.Run(fmt.Sprintf("%s, LiveSwitch %+v", tc.name, skew), func(t *testing.T) {
				var s *Server
				for i, st := range tc.steps {
					received := fixture.At(st.at)
					if st.poll {
						listed := MediaServerFacts{ID: "m"}
						o := &Observation{AtMs: received, IntervalMs: interval.Milliseconds(), MediaServers: []MediaServerFacts{listed}}
						if next, _, ok := Reconcile(s, &listed, o); ok {
							s = next
						}
						continue
					}
					ev := lifecycleEvent(MediaServerOrigin, "m", st.action, received+skew.Milliseconds()-st.stampedBefore.Milliseconds())
					var got Outcome
					s, got = Step(s, &ev, received)
					if got != st.want {
						t.Fatalf("step %d (%s): %s, want %s", i, st.action, got, st.want)
					}
				}
				if s.State != tc.state {
					t.Fatalf("ends %s, want %s: %+v", s.State, tc.state, *s)
				}
			})
		}
	}
}
