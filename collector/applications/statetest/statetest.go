// Package statetest holds the rules every callstate.State must follow,
// as tests any State can be put through (Run), with a model of the rules
// for randomised sequences. The in-memory State and the Redis State both
// run them, so that an exporter and replicas count alike.
package statetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
)

// t0 is the exporter's time the steps are after, and the event time the
// events are after.
var t0 = time.UnixMilli(1700000000000)

const ms = time.Millisecond

// stateStep is one body given to a callstate.State: facts at the exporter's time at
// (after t0).
type stateStep struct {
	at    time.Duration
	facts []callstate.Fact
}

// modelEvent builds a fact; ms is after t0, id the entity's id.
func modelEvent(app string, op callstate.Op, id string, ms int64) callstate.Fact {
	f := callstate.Fact{App: app, Op: op, Ms: t0.UnixMilli() + ms}
	typ := fmt.Sprint(op)
	if tb, ok := op.Table(); ok {
		f.Entity = callstate.EntityKey(tb, app, id)
	}
	f.Seen = callstate.EventKey(app, typ, f.Ms, id, "", "")
	return f
}

// stateModel is the rules of callstate.State without bounds: what a callstate.State with room
// enough and nothing expiring must do.
type stateModel struct {
	seen        map[callstate.Key]bool
	connections map[callstate.Key]*modelEntry
	channels    map[callstate.Key]*modelEntry
	clients     map[callstate.Key]*modelEntry
}

type modelEntry struct {
	app           string
	startMs, upMs int64
	members, peak int64
}

func newStateModel() *stateModel {
	return &stateModel{seen: map[callstate.Key]bool{}, connections: map[callstate.Key]*modelEntry{}, channels: map[callstate.Key]*modelEntry{}, clients: map[callstate.Key]*modelEntry{}}
}

func (m *stateModel) apply(f callstate.Fact) callstate.Effect {
	if m.seen[f.Seen] {
		return callstate.Effect{Duplicate: true, SpanMs: -1}
	}
	m.seen[f.Seen] = true
	e := callstate.Effect{SpanMs: -1}
	get := func(t map[callstate.Key]*modelEntry, create bool) *modelEntry {
		en := t[f.Entity]
		if en == nil && create {
			en = &modelEntry{app: f.App}
			t[f.Entity] = en
		}
		return en
	}
	switch f.Op {
	case callstate.OpConnectionStart:
		en := get(m.connections, true)
		if en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case callstate.OpConnectionUp:
		en := get(m.connections, true)
		if en.upMs == 0 {
			en.upMs = f.Ms
			if en.startMs != 0 && f.Ms >= en.startMs {
				e.SpanMs = f.Ms - en.startMs
			}
		}
	case callstate.OpConnectionClose, callstate.OpConnectionFail:
		e.Phase = callstate.PhaseUnknown
		if en := get(m.connections, false); en != nil {
			e.Phase = callstate.PhaseSetup
			if en.upMs != 0 {
				e.Phase = callstate.PhaseEstablished
				if f.Ms >= en.upMs {
					e.SpanMs = f.Ms - en.upMs
				}
			}
			delete(m.connections, f.Entity)
		}
	case callstate.OpChannelOn:
		en := get(m.channels, true)
		if en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case callstate.OpChannelJoin:
		en := get(m.channels, true)
		en.members++
		en.peak = max(en.peak, en.members)
	case callstate.OpChannelLeave:
		if en := get(m.channels, false); en != nil && en.members > 0 {
			en.members--
		}
	case callstate.OpChannelOff:
		if en := get(m.channels, false); en != nil {
			if en.startMs != 0 && f.Ms >= en.startMs {
				e.SpanMs, e.Peak = f.Ms-en.startMs, en.peak
			}
			delete(m.channels, f.Entity)
		}
	case callstate.OpClientOn:
		get(m.clients, true)
	case callstate.OpClientOff:
		delete(m.clients, f.Entity)
	}
	return e
}

func (m *stateModel) levels(app string) callstate.Levels {
	var lv callstate.Levels
	for _, en := range m.connections {
		if en.app == app {
			lv.Connections++
		}
	}
	for _, en := range m.channels {
		if en.app == app {
			lv.Channels++
			lv.LargestChannel = max(lv.LargestChannel, en.members)
		}
	}
	for _, en := range m.clients {
		if en.app == app {
			lv.Clients++
		}
	}
	return lv
}

// randomSteps makes a plausible, disordered life of a few applications:
// ops of a few entities in any order, some events sent twice, event times
// jittered; the exporter's clock advances a millisecond a step, so that no
// two entries share a deadline.
func randomSteps(rng *rand.Rand, n int) []stateStep {
	apps := []string{"app-a", "app-b", "app-c"}
	ops := []callstate.Op{callstate.OpNone, callstate.OpConnectionStart, callstate.OpConnectionStart, callstate.OpConnectionUp, callstate.OpConnectionUp, callstate.OpConnectionClose, callstate.OpConnectionFail,
		callstate.OpChannelOn, callstate.OpChannelJoin, callstate.OpChannelJoin, callstate.OpChannelLeave, callstate.OpChannelOff, callstate.OpClientOn, callstate.OpClientOff}
	var steps []stateStep
	var sent []callstate.Fact
	for i := range n {
		var f callstate.Fact
		if len(sent) > 0 && rng.IntN(10) == 0 {
			f = sent[rng.IntN(len(sent))] // a retry or a replay
		} else {
			f = modelEvent(apps[rng.IntN(len(apps))], ops[rng.IntN(len(ops))], fmt.Sprintf("e%d", rng.IntN(8)), int64(i*100+rng.IntN(500)))
			sent = append(sent, f)
		}
		steps = append(steps, stateStep{at: time.Duration(i) * ms, facts: []callstate.Fact{f}})
	}
	return steps
}

// Run puts a callstate.State made by newState through the rules of callstate.State:
// randomised sequences against the model, then the bounds. It is the
// contract of every callstate.State (memory, Redis).
func Run(t *testing.T, newState func(t *testing.T, l callstate.Limits) callstate.State) {
	t.Run("random sequences follow the model", func(t *testing.T) {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 7))
			s, m := newState(t, callstate.Limits{}), newStateModel()
			for i, step := range randomSteps(rng, 300) {
				got := make([]callstate.Effect, len(step.facts))
				if _, err := s.Apply(context.Background(), step.facts, t0.Add(step.at), got); err != nil {
					t.Fatal(err)
				}
				for j, f := range step.facts {
					if want := m.apply(f); got[j] != want {
						t.Fatalf("seed %d, step %d (%v of %s at %d): effect %+v, model %+v", seed, i, f.Op, f.App, f.Ms, got[j], want)
					}
				}
			}
			apps := []string{"app-a", "app-b", "app-c", "app-none"}
			levels, err := s.Levels(context.Background(), apps)
			if err != nil {
				t.Fatal(err)
			}
			for i, app := range apps {
				if want := m.levels(app); levels[i] != want {
					t.Fatalf("seed %d: levels of %s %+v, model %+v", seed, app, levels[i], want)
				}
			}
		}
	})
	for _, tc := range BoundCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newState(t, tc.limits)
			var drops callstate.Drops
			for i, step := range tc.steps {
				got := make([]callstate.Effect, len(step.facts))
				d, err := s.Apply(context.Background(), step.facts, t0.Add(step.at), got)
				if err != nil {
					t.Fatal(err)
				}
				drops.Add(d)
				if want := tc.effects[i]; want != nil && got[len(got)-1] != *want {
					t.Fatalf("step %d: effect %+v, want %+v", i, got[len(got)-1], *want)
				}
			}
			d, err := s.Sweep(context.Background(), t0.Add(tc.sweepAt))
			if err != nil {
				t.Fatal(err)
			}
			drops.Add(d)
			sizes, err := s.Sizes(context.Background(), t0.Add(tc.sweepAt))
			if err != nil {
				t.Fatal(err)
			}
			if drops != tc.drops || sizes.Entries != tc.entries || (tc.remembered >= 0 && sizes.Remembered != tc.remembered) {
				t.Fatalf("drops %v, entries %v, remembered %d; want %v, %v, %d", drops, sizes.Entries, sizes.Remembered, tc.drops, tc.entries, tc.remembered)
			}
		})
	}
}

func effect(span int64, phase callstate.Phase) *callstate.Effect {
	return &callstate.Effect{SpanMs: span, Phase: phase}
}

// BoundCases are the bounds of callstate.State: times to live, caps, the memory of
// events.
var BoundCases = []struct {
	name    string
	limits  callstate.Limits
	steps   []stateStep
	effects []*callstate.Effect // of each step's last fact; nil: not checked
	sweepAt time.Duration
	drops   callstate.Drops
	entries [callstate.NumTables]int64
	// remembered is the events remembered after the sweep; -1: not checked.
	remembered int64
}{
	{
		name: "a connection that does not connect expires after PendingTTL, by the exporter's clock",
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "c", 0)}},
			{callstate.DefaultPendingTTL - time.Millisecond, []callstate.Fact{modelEvent("a", callstate.OpNone, "", 1)}},
			{callstate.DefaultPendingTTL, []callstate.Fact{modelEvent("a", callstate.OpConnectionUp, "c", 2000)}},
		},
		effects:    []*callstate.Effect{nil, nil, effect(-1, 0)}, // a connected after it expired: no setup time
		sweepAt:    callstate.DefaultPendingTTL,
		drops:      callstate.Drops{callstate.TableConnections: {callstate.DropExpired: 1}},
		entries:    [callstate.NumTables]int64{callstate.TableConnections: 1},
		remembered: 3,
	},
	{
		name: "a connected connection lives OpenTTL from its connected",
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "c", 0)}},
			{time.Minute, []callstate.Fact{modelEvent("a", callstate.OpConnectionUp, "c", 1000)}},
			{time.Minute + callstate.DefaultOpenTTL - time.Millisecond, []callstate.Fact{modelEvent("a", callstate.OpConnectionClose, "c", 5000)}},
		},
		effects:    []*callstate.Effect{nil, effect(1000, 0), effect(4000, callstate.PhaseEstablished)},
		sweepAt:    time.Minute + callstate.DefaultOpenTTL,
		remembered: 0, // all three are too old by then
	},
	{
		name: "a channel expires after OpenTTL; its deactivation then observes nothing",
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpChannelOn, "ch", 0)}},
			{callstate.DefaultOpenTTL, []callstate.Fact{modelEvent("a", callstate.OpChannelOff, "ch", 1000)}},
		},
		effects:    []*callstate.Effect{nil, effect(-1, 0)},
		sweepAt:    callstate.DefaultOpenTTL,
		drops:      callstate.Drops{callstate.TableChannels: {callstate.DropExpired: 1}},
		remembered: -1,
	},
	{
		name:   "full: the entry closest to expiring goes, pending connections before connected ones",
		limits: callstate.Limits{MaxEntries: [callstate.NumTables]int{callstate.TableConnections: 2}},
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "old", 0)}},
			{1 * ms, []callstate.Fact{modelEvent("a", callstate.OpConnectionUp, "up", 1)}},
			{2 * ms, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "new", 2)}}, // evicts "old", not "up" (further deadline)
			{3 * ms, []callstate.Fact{modelEvent("a", callstate.OpConnectionUp, "old", 3)}},    // "old" is back, connected: evicts "new"
			{4 * ms, []callstate.Fact{modelEvent("a", callstate.OpConnectionClose, "up", 4)}},
		},
		effects:    []*callstate.Effect{nil, nil, nil, effect(-1, 0), effect(3, callstate.PhaseEstablished)},
		sweepAt:    5 * ms,
		drops:      callstate.Drops{callstate.TableConnections: {callstate.DropEvicted: 2}},
		entries:    [callstate.NumTables]int64{callstate.TableConnections: 1},
		remembered: 5,
	},
	{
		name:   "full tables of channels and clients evict too",
		limits: callstate.Limits{MaxEntries: [callstate.NumTables]int{callstate.TableChannels: 1, callstate.TableClients: 1}},
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpChannelOn, "ch1", 0), modelEvent("a", callstate.OpClientOn, "cl1", 0)}},
			{1 * ms, []callstate.Fact{modelEvent("a", callstate.OpChannelJoin, "ch2", 1), modelEvent("a", callstate.OpClientOn, "cl2", 1)}},
			{2 * ms, []callstate.Fact{modelEvent("a", callstate.OpChannelOff, "ch1", 2)}},
		},
		effects:    []*callstate.Effect{nil, nil, effect(-1, 0)},
		sweepAt:    3 * ms,
		drops:      callstate.Drops{callstate.TableChannels: {callstate.DropEvicted: 1}, callstate.TableClients: {callstate.DropEvicted: 1}},
		entries:    [callstate.NumTables]int64{callstate.TableChannels: 1, callstate.TableClients: 1},
		remembered: 5,
	},
	{
		name: "an event is remembered until it is too old to be accepted",
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "c", 0)}},
			{callstate.DefaultMaxEventAge, []callstate.Fact{modelEvent("a", callstate.OpConnectionStart, "c", 0)}}, // a late retry: still a duplicate
		},
		effects:    []*callstate.Effect{nil, {Duplicate: true, SpanMs: -1}},
		sweepAt:    callstate.DefaultMaxEventAge + 2*time.Minute, // its whole minute is too old
		drops:      callstate.Drops{callstate.TableConnections: {callstate.DropExpired: 1}},
		remembered: 0,
	},
	{
		name:   "the memory of a minute is bounded; past it, events are applied unremembered",
		limits: callstate.Limits{MaxRemembered: 1}, // one an event-time minute
		steps: []stateStep{
			{0, []callstate.Fact{modelEvent("a", callstate.OpClientOn, "c1", 0)}},
			{1 * ms, []callstate.Fact{modelEvent("a", callstate.OpClientOn, "c2", 1)}},
			{2 * ms, []callstate.Fact{modelEvent("a", callstate.OpClientOn, "c2", 1)}}, // not remembered: applied again, changes nothing
			{3 * ms, []callstate.Fact{modelEvent("a", callstate.OpClientOn, "c3", int64(time.Minute/time.Millisecond))}},
		},
		effects:    []*callstate.Effect{nil, {Unremembered: true, SpanMs: -1}, {Unremembered: true, SpanMs: -1}, effect(-1, 0)},
		sweepAt:    4 * ms,
		entries:    [callstate.NumTables]int64{callstate.TableClients: 3},
		remembered: 2,
	},
}
