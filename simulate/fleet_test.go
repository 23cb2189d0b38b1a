package simulate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
)

func TestGeneratorEventsAreValidAndReproducible(t *testing.T) {
	clock := func() time.Time { return time.UnixMilli(1700000000000) }
	cfg := DefaultFleetConfig
	cfg.Scenario = Stormy
	a := NewGenerator(cfg, clock)
	b := NewGenerator(cfg, clock)
	kinds := map[string]int{}
	for i := range 2000 {
		ea, eb := a.Next(), b.Next()
		if ea.Key != eb.Key || !bytes.Equal(ea.Body, eb.Body) {
			t.Fatalf("event %d differs between two generators of one seed", i)
		}
		evs, err := event.Decode(ea.Body, event.DefaultDecodeOptions, clock().Add(time.Hour))
		if err != nil {
			t.Fatalf("event %d is not valid: %v\n%s", i, err, ea.Body)
		}
		kinds[evs[0].Type]++
	}
	for _, typ := range []string{"gateway.started", "mediaserver.registered", "mediaserver.unregistered",
		"mediaserver.stopped", "sipconnector.registered", "recordingmuxer.started", "mediaserver.stats"} {
		if kinds[typ] == 0 {
			t.Errorf("2000 events hold no %s: %v", typ, kinds)
		}
	}
}

func TestGeneratorGrows(t *testing.T) {
	g := NewGenerator(DefaultFleetConfig, nil)
	g.Grow = true
	before := g.Size()
	for range before*2 + 500 {
		g.Next()
	}
	if g.Size() < before+200 {
		t.Fatalf("fleet grew from %d to %d only", before, g.Size())
	}
}

// life is what a run of a generator did to each server, read from the
// events' bodies alone.
type life struct {
	servers int
	// flaps are re-registrations after an unregistration without a stop in
	// between (what liveswitch_server_registration_flaps_total counts);
	// losses are unregistrations and stops of a registered or running
	// server, i.e. every incident.
	flaps, losses, restarts int
	// worstWindow is the most registrations one server lost within any
	// 100 simulated seconds.
	worstWindow int
	simulated   time.Duration
}

// live runs cfg's generator for the given simulated time, its clock stepping
// by step at every event (1/step events per second).
func live(t *testing.T, cfg FleetConfig, step, simulated time.Duration) life {
	t.Helper()
	clock := time.UnixMilli(1700000000000)
	g := NewGenerator(cfg, func() time.Time { return clock })
	type track struct {
		unregistered bool
		lost         []int64 // times of registration losses
	}
	servers := map[string]*track{}
	var l life
	for end := clock.Add(simulated); clock.Before(end); clock = clock.Add(step) {
		ev := g.Next()
		var env struct {
			Type      string
			Timestamp int64
		}
		if err := json.Unmarshal(ev.Body, &env); err != nil {
			t.Fatal(err)
		}
		s := servers[ev.Key]
		if s == nil {
			s = &track{}
			servers[ev.Key] = s
		}
		_, action, _ := strings.Cut(env.Type, ".")
		switch action {
		case "registered":
			if s.unregistered {
				l.flaps++
			}
			s.unregistered = false
		case "unregistered":
			s.unregistered = true
			s.lost = append(s.lost, env.Timestamp)
			l.losses++
		case "stopped":
			if !s.unregistered {
				l.losses++ // a gateway, or a server that never registered
			}
			s.unregistered = false
			l.restarts++
		}
	}
	for _, s := range servers {
		for i := range s.lost {
			n := 0
			for _, ms := range s.lost[i:] {
				if ms-s.lost[i] < 100_000 {
					n++
				}
			}
			l.worstWindow = max(l.worstWindow, n)
		}
	}
	l.servers, l.simulated = len(servers), simulated
	return l
}

// per100s is n per server per 100 simulated seconds.
func (l life) per100s(n int) float64 {
	return float64(n) / float64(l.servers) / (l.simulated.Seconds() / 100)
}

// TestHealthyScenarioIsCalm: in the healthy scenario, whatever the event
// rate, a server flaps well under once an hour and never loses its
// registration more than twice within 100 s; yet incidents do happen
// (restarts, flaps, shutdowns), so the demo is not a still picture.
func TestHealthyScenarioIsCalm(t *testing.T) {
	cfg := DefaultFleetConfig
	cfg.Scenario = Healthy
	for _, tc := range []struct {
		rate      int
		simulated time.Duration
	}{{1, 3 * time.Hour}, {20, 15 * time.Minute}} {
		l := live(t, cfg, time.Second/time.Duration(tc.rate), tc.simulated)
		t.Logf("healthy at %d events/s for %s: %d servers, %d flaps (%.3f per server per 100 s), %d losses (%.3f), %d stops, worst 100 s window %d",
			tc.rate, tc.simulated, l.servers, l.flaps, l.per100s(l.flaps), l.losses, l.per100s(l.losses), l.restarts, l.worstWindow)
		if l.servers != 30 || l.per100s(l.flaps) > 0.05 || l.per100s(l.losses) > 0.1 || l.worstWindow > 2 {
			t.Errorf("at %d events/s the healthy fleet is not calm", tc.rate)
		}
		if tc.simulated >= time.Hour && (l.flaps < 10 || l.restarts < 30) {
			t.Errorf("%s of the healthy fleet hold %d flaps and %d stops: no incidents", tc.simulated, l.flaps, l.restarts)
		}
	}
}

// TestStormyScenarioChurns: the stormy scenario keeps the churn load tests
// rely on: at 20 events/s, several flaps per server per 100 s.
func TestStormyScenarioChurns(t *testing.T) {
	cfg := DefaultFleetConfig
	cfg.Scenario = Stormy
	l := live(t, cfg, 50*time.Millisecond, 10*time.Minute)
	t.Logf("stormy at 20 events/s: %.2f flaps and %.2f losses per server per 100 s, worst 100 s window %d",
		l.per100s(l.flaps), l.per100s(l.losses), l.worstWindow)
	if l.per100s(l.flaps) < 2 || l.per100s(l.losses) < 5 {
		t.Errorf("the stormy fleet is calm")
	}
	var zero FleetConfig
	if zero.Scenario != "" || NewGenerator(zero, nil).cfg.Scenario == Healthy {
		t.Errorf("the zero Scenario is not the stormy one")
	}
}
