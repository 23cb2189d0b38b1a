package fleet

import (
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
			if next.SinceMs() != o.AtMs || next.LastAction != event.ActionRegistered || next.LastEventMs != o.AtMs {
				t.Fatalf("not stamped with the poll time: %+v", next)
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
