// Package statetest holds the rules every applications.State must follow,
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

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
)

// t0 is the exporter's time the steps are after, and the event time the
// events are after.
var t0 = time.UnixMilli(1700000000000)

const ms = time.Millisecond

// stateStep is one body given to a applications.State: facts at the exporter's time at
// (after t0).
type stateStep struct {
	at    time.Duration
	facts []applications.Fact
}

// modelEvent builds a fact; ms is after t0, id the entity's id.
func modelEvent(app string, op applications.Op, id string, ms int64) applications.Fact {
	f := applications.Fact{App: app, Op: op, Ms: t0.UnixMilli() + ms}
	typ := fmt.Sprint(op)
	if tb, ok := op.Table(); ok {
		f.Entity = applications.EntityKey(tb, app, id)
	}
	f.Seen = applications.EventKey(app, typ, f.Ms, id, "", "")
	return f
}

// stateModel is the rules of applications.State without bounds: what a applications.State with room
// enough and nothing expiring must do.
type stateModel struct {
	seen        map[applications.Key]bool
	connections map[applications.Key]*modelEntry
	channels    map[applications.Key]*modelEntry
	clients     map[applications.Key]*modelEntry
}

type modelEntry struct {
	app           string
	startMs, upMs int64
	members, peak int64
}

func newStateModel() *stateModel {
	return &stateModel{seen: map[applications.Key]bool{}, connections: map[applications.Key]*modelEntry{}, channels: map[applications.Key]*modelEntry{}, clients: map[applications.Key]*modelEntry{}}
}

func (m *stateModel) apply(f applications.Fact) applications.Effect {
	if m.seen[f.Seen] {
		return applications.Effect{Duplicate: true, SpanMs: -1}
	}
	m.seen[f.Seen] = true
	e := applications.Effect{SpanMs: -1}
	get := func(t map[applications.Key]*modelEntry, create bool) *modelEntry {
		en := t[f.Entity]
		if en == nil && create {
			en = &modelEntry{app: f.App}
			t[f.Entity] = en
		}
		return en
	}
	switch f.Op {
	case applications.OpConnectionStart:
		en := get(m.connections, true)
		if en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case applications.OpConnectionUp:
		en := get(m.connections, true)
		if en.upMs == 0 {
			en.upMs = f.Ms
			if en.startMs != 0 && f.Ms >= en.startMs {
				e.SpanMs = f.Ms - en.startMs
			}
		}
	case applications.OpConnectionClose, applications.OpConnectionFail:
		e.Phase = applications.PhaseUnknown
		if en := get(m.connections, false); en != nil {
			e.Phase = applications.PhaseSetup
			if en.upMs != 0 {
				e.Phase = applications.PhaseEstablished
				if f.Ms >= en.upMs {
					e.SpanMs = f.Ms - en.upMs
				}
			}
			delete(m.connections, f.Entity)
		}
	case applications.OpChannelOn:
		en := get(m.channels, true)
		if en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case applications.OpChannelJoin:
		en := get(m.channels, true)
		en.members++
		en.peak = max(en.peak, en.members)
	case applications.OpChannelLeave:
		if en := get(m.channels, false); en != nil && en.members > 0 {
			en.members--
		}
	case applications.OpChannelOff:
		if en := get(m.channels, false); en != nil {
			if en.startMs != 0 && f.Ms >= en.startMs {
				e.SpanMs, e.Peak = f.Ms-en.startMs, en.peak
			}
			delete(m.channels, f.Entity)
		}
	case applications.OpClientOn:
		get(m.clients, true)
	case applications.OpClientOff:
		delete(m.clients, f.Entity)
	}
	return e
}

func (m *stateModel) levels(app string) applications.Levels {
	var lv applications.Levels
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
	ops := []applications.Op{applications.OpNone, applications.OpConnectionStart, applications.OpConnectionStart, applications.OpConnectionUp, applications.OpConnectionUp, applications.OpConnectionClose, applications.OpConnectionFail,
		applications.OpChannelOn, applications.OpChannelJoin, applications.OpChannelJoin, applications.OpChannelLeave, applications.OpChannelOff, applications.OpClientOn, applications.OpClientOff}
	var steps []stateStep
	var sent []applications.Fact
	for i := range n {
		var f applications.Fact
		if len(sent) > 0 && rng.IntN(10) == 0 {
			f = sent[rng.IntN(len(sent))] // a retry or a replay
		} else {
			f = modelEvent(apps[rng.IntN(len(apps))], ops[rng.IntN(len(ops))], fmt.Sprintf("e%d", rng.IntN(8)), int64(i*100+rng.IntN(500)))
			sent = append(sent, f)
		}
		steps = append(steps, stateStep{at: time.Duration(i) * ms, facts: []applications.Fact{f}})
	}
	return steps
}

// Run puts a applications.State made by newState through the rules of applications.State:
// randomised sequences against the model, then the bounds. It is the
// contract of every applications.State (memory, Redis).
func Run(t *testing.T, newState func(t *testing.T, l applications.Limits) applications.State) {
	t.Run("random sequences follow the model", func(t *testing.T) {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 7))
			s, m := newState(t, applications.Limits{}), newStateModel()
			for i, step := range randomSteps(rng, 300) {
				got := make([]applications.Effect, len(step.facts))
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
			var drops applications.Drops
			for i, step := range tc.steps {
				got := make([]applications.Effect, len(step.facts))
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

func effect(span int64, phase applications.Phase) *applications.Effect {
	return &applications.Effect{SpanMs: span, Phase: phase}
}

// BoundCases are the bounds of applications.State: times to live, caps, the memory of
// events.
var BoundCases = []struct {
	name    string
	limits  applications.Limits
	steps   []stateStep
	effects []*applications.Effect // of each step's last fact; nil: not checked
	sweepAt time.Duration
	drops   applications.Drops
	entries [applications.NumTables]int64
	// remembered is the events remembered after the sweep; -1: not checked.
	remembered int64
}{
	{
		name: "a connection that does not connect expires after PendingTTL, by the exporter's clock",
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "c", 0)}},
			{applications.DefaultPendingTTL - time.Millisecond, []applications.Fact{modelEvent("a", applications.OpNone, "", 1)}},
			{applications.DefaultPendingTTL, []applications.Fact{modelEvent("a", applications.OpConnectionUp, "c", 2000)}},
		},
		effects:    []*applications.Effect{nil, nil, effect(-1, 0)}, // a connected after it expired: no setup time
		sweepAt:    applications.DefaultPendingTTL,
		drops:      applications.Drops{applications.TableConnections: {applications.DropExpired: 1}},
		entries:    [applications.NumTables]int64{applications.TableConnections: 1},
		remembered: 3,
	},
	{
		name: "a connected connection lives OpenTTL from its connected",
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "c", 0)}},
			{time.Minute, []applications.Fact{modelEvent("a", applications.OpConnectionUp, "c", 1000)}},
			{time.Minute + applications.DefaultOpenTTL - time.Millisecond, []applications.Fact{modelEvent("a", applications.OpConnectionClose, "c", 5000)}},
		},
		effects:    []*applications.Effect{nil, effect(1000, 0), effect(4000, applications.PhaseEstablished)},
		sweepAt:    time.Minute + applications.DefaultOpenTTL,
		remembered: 0, // all three are too old by then
	},
	{
		name: "a channel expires after OpenTTL; its deactivation then observes nothing",
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpChannelOn, "ch", 0)}},
			{applications.DefaultOpenTTL, []applications.Fact{modelEvent("a", applications.OpChannelOff, "ch", 1000)}},
		},
		effects:    []*applications.Effect{nil, effect(-1, 0)},
		sweepAt:    applications.DefaultOpenTTL,
		drops:      applications.Drops{applications.TableChannels: {applications.DropExpired: 1}},
		remembered: -1,
	},
	{
		name:   "full: the entry closest to expiring goes, pending connections before connected ones",
		limits: applications.Limits{MaxEntries: [applications.NumTables]int{applications.TableConnections: 2}},
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "old", 0)}},
			{1 * ms, []applications.Fact{modelEvent("a", applications.OpConnectionUp, "up", 1)}},
			{2 * ms, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "new", 2)}}, // evicts "old", not "up" (further deadline)
			{3 * ms, []applications.Fact{modelEvent("a", applications.OpConnectionUp, "old", 3)}},    // "old" is back, connected: evicts "new"
			{4 * ms, []applications.Fact{modelEvent("a", applications.OpConnectionClose, "up", 4)}},
		},
		effects:    []*applications.Effect{nil, nil, nil, effect(-1, 0), effect(3, applications.PhaseEstablished)},
		sweepAt:    5 * ms,
		drops:      applications.Drops{applications.TableConnections: {applications.DropEvicted: 2}},
		entries:    [applications.NumTables]int64{applications.TableConnections: 1},
		remembered: 5,
	},
	{
		name:   "full tables of channels and clients evict too",
		limits: applications.Limits{MaxEntries: [applications.NumTables]int{applications.TableChannels: 1, applications.TableClients: 1}},
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpChannelOn, "ch1", 0), modelEvent("a", applications.OpClientOn, "cl1", 0)}},
			{1 * ms, []applications.Fact{modelEvent("a", applications.OpChannelJoin, "ch2", 1), modelEvent("a", applications.OpClientOn, "cl2", 1)}},
			{2 * ms, []applications.Fact{modelEvent("a", applications.OpChannelOff, "ch1", 2)}},
		},
		effects:    []*applications.Effect{nil, nil, effect(-1, 0)},
		sweepAt:    3 * ms,
		drops:      applications.Drops{applications.TableChannels: {applications.DropEvicted: 1}, applications.TableClients: {applications.DropEvicted: 1}},
		entries:    [applications.NumTables]int64{applications.TableChannels: 1, applications.TableClients: 1},
		remembered: 5,
	},
	{
		name: "an event is remembered until it is too old to be accepted",
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "c", 0)}},
			{applications.DefaultMaxEventAge, []applications.Fact{modelEvent("a", applications.OpConnectionStart, "c", 0)}}, // a late retry: still a duplicate
		},
		effects:    []*applications.Effect{nil, {Duplicate: true, SpanMs: -1}},
		sweepAt:    applications.DefaultMaxEventAge + 2*time.Minute, // its whole minute is too old
		drops:      applications.Drops{applications.TableConnections: {applications.DropExpired: 1}},
		remembered: 0,
	},
	{
		name:   "the memory of a minute is bounded; past it, events are applied unremembered",
		limits: applications.Limits{MaxRemembered: 1}, // one an event-time minute
		steps: []stateStep{
			{0, []applications.Fact{modelEvent("a", applications.OpClientOn, "c1", 0)}},
			{1 * ms, []applications.Fact{modelEvent("a", applications.OpClientOn, "c2", 1)}},
			{2 * ms, []applications.Fact{modelEvent("a", applications.OpClientOn, "c2", 1)}}, // not remembered: applied again, changes nothing
			{3 * ms, []applications.Fact{modelEvent("a", applications.OpClientOn, "c3", int64(time.Minute/time.Millisecond))}},
		},
		effects:    []*applications.Effect{nil, {Unremembered: true, SpanMs: -1}, {Unremembered: true, SpanMs: -1}, effect(-1, 0)},
		sweepAt:    4 * ms,
		entries:    [applications.NumTables]int64{applications.TableClients: 3},
		remembered: 2,
	},
}
