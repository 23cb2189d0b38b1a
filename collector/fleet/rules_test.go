package fleet

import (
	"math/rand/v2"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

func lifecycleEvent(origin, id string, a event.Action, ts int64) event.Event {
	return event.Event{Timestamp: ts, Type: origin + "." + a.String(), Kind: event.KindLifecycle, Action: a, Origin: origin,
		Server: event.Info{ID: id, Region: "eu", DeploymentID: "d1", CoreCount: 8}}
}

// fold applies events in order to a fresh server record.
func fold(events ...event.Event) (*Server, []Outcome) {
	var s *Server
	outcomes := make([]Outcome, len(events))
	for i := range events {
		s, outcomes[i] = Step(s, &events[i], events[i].Timestamp)
	}
	return s, outcomes
}

// TestStepEveryOriginAndAction applies each lifecycle action to an unknown
// server of each origin. The expected states are written out here, from
// docs/webhooks.md ("each of started, registered, unregistered, stopped moves it to the
// matching state"), not read from the implementation's table.
func TestStepEveryOriginAndAction(t *testing.T) {
	cases := []struct {
		action event.Action
		state  State
	}{
		{event.ActionStarted, StateRunning},
		{event.ActionRegistered, StateRegistered},
		{event.ActionUnregistered, StateUnregistered},
		{event.ActionStopped, StateStopped},
	}
	if len(cases) != int(event.NumActions) {
		t.Fatalf("%d cases for %d actions: give every action its expected state", len(cases), event.NumActions)
	}
	for _, origin := range fixture.Origins {
		for _, tc := range cases {
			t.Run(origin+"."+tc.action.String(), func(t *testing.T) {
				s, outcomes := fold(lifecycleEvent(origin, "x", tc.action, 1000))
				if outcomes[0] != OutcomeApplied {
					t.Fatalf("outcome %s", outcomes[0])
				}
				want := Server{Origin: origin, Info: event.Info{ID: "x", Region: "eu", DeploymentID: "d1", CoreCount: 8},
					State: tc.state, LastEventMs: 1000, LastActionMs: 1000, LastAction: tc.action, StateReceivedMs: 1000}
				want.Events[tc.action] = 1
				if *s != want {
					t.Fatalf("got %+v\nwant %+v", *s, want)
				}
			})
		}
	}
}

func TestStepSequences(t *testing.T) {
	const (
		st = event.ActionStarted
		rg = event.ActionRegistered
		ur = event.ActionUnregistered
		sp = event.ActionStopped
	)
	type step struct {
		a  event.Action
		ts int64
	}
	for _, tc := range []struct {
		name     string
		steps    []step
		outcomes []Outcome
		state    State
		since    int64
		flaps    uint64
	}{
		{"start and register", []step{{st, 1}, {rg, 2}}, []Outcome{OutcomeApplied, OutcomeApplied}, StateRegistered, 2, 0},
		{"clean shutdown is no flap", []step{{st, 1}, {rg, 2}, {ur, 3}, {sp, 4}},
			[]Outcome{OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied}, StateStopped, 4, 0},
		{"flap", []step{{st, 1}, {rg, 2}, {ur, 3}, {rg, 4}},
			[]Outcome{OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied}, StateRegistered, 4, 1},
		{"stop in between is no flap", []step{{rg, 2}, {ur, 3}, {sp, 4}, {st, 5}, {rg, 6}},
			[]Outcome{OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied}, StateRegistered, 6, 0},
		{"rolling restart", []step{{st, 1}, {rg, 2}, {ur, 10}, {sp, 11}, {st, 20}, {rg, 21}},
			[]Outcome{OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied, OutcomeApplied}, StateRegistered, 21, 0},
		{"duplicate delivery", []step{{st, 1}, {rg, 2}, {rg, 2}}, []Outcome{OutcomeApplied, OutcomeApplied, OutcomeDuplicate}, StateRegistered, 2, 0},
		{"late delivery", []step{{st, 1}, {ur, 5}, {rg, 3}}, []Outcome{OutcomeApplied, OutcomeApplied, OutcomeOutOfOrder}, StateUnregistered, 5, 0},
		{"same millisecond, lifecycle order decides", []step{{sp, 7}, {ur, 7}}, []Outcome{OutcomeApplied, OutcomeOutOfOrder}, StateStopped, 7, 0},
		{"same millisecond, in order", []step{{ur, 7}, {sp, 7}}, []Outcome{OutcomeApplied, OutcomeApplied}, StateStopped, 7, 0},
		{"re-registration re-enters the state", []step{{rg, 2}, {rg, 9}}, []Outcome{OutcomeApplied, OutcomeApplied}, StateRegistered, 9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := make([]event.Event, len(tc.steps))
			for i, s := range tc.steps {
				events[i] = lifecycleEvent("mediaserver", "m", s.a, s.ts)
			}
			s, outcomes := fold(events...)
			for i := range outcomes {
				if outcomes[i] != tc.outcomes[i] {
					t.Errorf("event %d: outcome %s, want %s", i, outcomes[i], tc.outcomes[i])
				}
			}
			if s.State != tc.state || s.SinceMs() != tc.since || s.Flaps != tc.flaps {
				t.Errorf("state %s since %d flaps %d; want %s since %d flaps %d",
					s.State, s.SinceMs(), s.Flaps, tc.state, tc.since, tc.flaps)
			}
		})
	}
}

func TestStepHeartbeat(t *testing.T) {
	hb := func(ts int64) event.Event {
		return event.Event{Timestamp: ts, Type: "mediaserver.stats", Kind: event.KindHeartbeat, Origin: "mediaserver", Server: event.Info{ID: "m"}}
	}
	if s, o := fold(hb(5)); s != nil || o[0] != OutcomeIgnored {
		t.Fatalf("heartbeat of an unknown server: %+v %s", s, o[0])
	}
	s, outcomes := fold(lifecycleEvent("mediaserver", "m", event.ActionRegistered, 5), hb(9), hb(7),
		lifecycleEvent("mediaserver", "m", event.ActionUnregistered, 8))
	want := []Outcome{OutcomeApplied, OutcomeApplied, OutcomeIgnored, OutcomeApplied}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Errorf("event %d: %s, want %s", i, outcomes[i], want[i])
		}
	}
	// A heartbeat refreshes the last event time but does not order lifecycle
	// events: the unregistration stamped 8 still applies after a stats at 9.
	if s.State != StateUnregistered || s.LastEventMs != 9 || s.SinceMs() != 8 || s.Events[event.ActionRegistered] != 1 {
		t.Fatalf("got %+v", *s)
	}
}

func TestStepDoesNotModifyPrevious(t *testing.T) {
	prev, _ := fold(lifecycleEvent("gateway", "g", event.ActionStarted, 1))
	before := *prev
	ev := lifecycleEvent("gateway", "g", event.ActionStopped, 2)
	next, _ := Step(prev, &ev, 2)
	if *prev != before || next == prev {
		t.Fatal("Step changed the record it was given")
	}
}

// TestStepOrderIndependence delivers the same events in many random orders:
// the final state must always be that of the newest event.
func TestStepOrderIndependence(t *testing.T) {
	events := []event.Event{
		lifecycleEvent("mediaserver", "m", event.ActionStarted, 10),
		lifecycleEvent("mediaserver", "m", event.ActionRegistered, 20),
		lifecycleEvent("mediaserver", "m", event.ActionUnregistered, 30),
		lifecycleEvent("mediaserver", "m", event.ActionStopped, 30),
		lifecycleEvent("mediaserver", "m", event.ActionStarted, 40),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		rng.Shuffle(len(events), func(a, b int) { events[a], events[b] = events[b], events[a] })
		s, _ := fold(append(events, events[0])...)
		if s.State != StateRunning || s.SinceMs() != 40 {
			t.Fatalf("order %v: state %s since %d", events, s.State, s.SinceMs())
		}
	}
}
