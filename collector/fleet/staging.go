package fleet

import (
	"cmp"
	"slices"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
)

// Staging holds the changes of one group of commands on top of the
// committed fleet, by the fleet's rules (Step, the limits, Reconcile),
// until they are durable; Fleet.Publish then makes them visible all at
// once. It is how the fleet is changed: the writer stages each group,
// commits what Changes lists to its store, and publishes it. A Staging is
// used by one goroutine at a time and reused from one group to the next
// (Reset), keeping its memory.
type Staging struct {
	fleet  *Fleet
	limits Limits
	// changes maps each server the group changed to its new record; nil
	// marks a server to forget.
	changes map[Key]*Server
	// size and stopped count the fleet as it will be after the group.
	size, stopped int
	// stats counts what the group did: outcomes, forgotten servers, and
	// the last time a command was received.
	stats Stats
	// applied lists the lifecycle events applied, for the servers' history;
	// receivedMs is when the command being applied was received.
	applied    []applied
	receivedMs int64
	// evictable lists stopped servers, longest stopped first; built only
	// when the fleet is full.
	evictable []*Server
	// gateway is the Gateway view an observation of the group staged; nil
	// leaves the fleet's as it is.
	gateway *GatewayView
}

// Reset empties st for a new group on f, under limits, keeping its memory.
func (st *Staging) Reset(f *Fleet, limits Limits) {
	if st.changes == nil {
		st.changes = make(map[Key]*Server)
	}
	clear(st.changes)
	clear(st.applied)
	clear(st.evictable)
	*st = Staging{fleet: f, limits: limits, changes: st.changes, applied: st.applied[:0], evictable: st.evictable[:0],
		size: len(f.servers), stopped: f.stopped}
}

func (st *Staging) get(k Key) *Server {
	if s, ok := st.changes[k]; ok {
		return s
	}
	return st.fleet.lookup(k)
}

// set stages next (nil: forget) in place of prev.
func (st *Staging) set(k Key, prev, next *Server) {
	st.changes[k] = next
	st.size += boolInt(next != nil) - boolInt(prev != nil)
	st.stopped += boolInt(next != nil && next.State == StateStopped) - boolInt(prev != nil && prev.State == StateStopped)
}

// Received stamps the events applied next with the exporter's time (ms
// since the epoch) at which their command was received.
func (st *Staging) Received(ms int64) {
	st.receivedMs = ms
	st.stats.LastReceivedMs = max(st.stats.LastReceivedMs, ms)
}

// Apply stages one event by Step, within the limits, and returns its
// outcome.
func (st *Staging) Apply(ev *event.Event) Outcome {
	outcome := st.apply(ev)
	st.stats.Outcomes[outcome]++
	return outcome
}

func (st *Staging) apply(ev *event.Event) Outcome {
	if ev.Kind == event.KindIgnored || ev.Server.ID == "" {
		return OutcomeIgnored
	}
	k := Key{Origin: ev.Origin, ID: ev.Server.ID}
	prev := st.get(k)
	next, outcome := Step(prev, ev, st.receivedMs)
	if next == prev {
		return outcome
	}
	if prev == nil && st.full() && !st.evict() {
		return OutcomeRefused
	}
	st.set(k, prev, next)
	if ev.Kind == event.KindLifecycle {
		st.applied = append(st.applied, applied{k, AppliedEvent{ev.Action, ev.Timestamp, st.receivedMs}})
	}
	return outcome
}

func (st *Staging) full() bool {
	return st.limits.MaxServers > 0 && st.size >= st.limits.MaxServers
}

// Forget stages the removal of k, deleted by an operator; it reports
// whether k was tracked.
func (st *Staging) Forget(k Key) bool { return st.forget(k, ForgetDeleted) }

// forget stages the removal of k; it reports whether k was tracked.
func (st *Staging) forget(k Key, reason ForgetReason) bool {
	prev := st.get(k)
	if prev == nil {
		return false
	}
	st.set(k, prev, nil)
	st.stats.Forgotten[reason]++
	return true
}

// evict forgets the server stopped longest ago, if any is stopped.
func (st *Staging) evict() bool {
	for attempt := 0; attempt < 2 && st.stopped > 0; attempt++ {
		for len(st.evictable) > 0 {
			s := st.evictable[0]
			st.evictable = st.evictable[1:]
			if st.get(s.Key()) == s { // still stopped, unchanged
				return st.forget(s.Key(), ForgetEvicted)
			}
		}
		st.evictable = st.stoppedServers()
	}
	return false
}

func (st *Staging) stoppedServers() []*Server {
	var list []*Server
	add := func(s *Server) {
		if s != nil && s.State == StateStopped {
			list = append(list, s)
		}
	}
	for k, s := range st.fleet.servers {
		if _, changed := st.changes[k]; !changed {
			add(s)
		}
	}
	for _, s := range st.changes {
		add(s)
	}
	slices.SortFunc(list, func(a, b *Server) int {
		return cmp.Or(cmp.Compare(a.SinceMs(), b.SinceMs()),
			cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Info.ID, b.Info.ID))
	})
	return list
}

// Sweep forgets every server whose retention or staleness limit has passed
// at now; a media server the Gateway lists is not stale, whatever its
// webhooks. It returns how many it forgot.
func (st *Staging) Sweep(now time.Time) int {
	n := 0
	for k := range st.fleet.servers {
		if s := st.get(k); s != nil {
			if reason, ok := st.limits.expired(s, now); ok && !(reason == ForgetStale && st.listedByGateway(k)) {
				n += boolInt(st.forget(k, reason))
			}
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Changes maps each server the group changed to its new record, nil for a
// server forgotten: what a store must commit. It is read-only, and valid
// until the next Reset.
func (st *Staging) Changes() map[Key]*Server { return st.changes }

// Gateway is the Gateway view an observation of the group staged, nil when
// the group observed nothing.
func (st *Staging) Gateway() *GatewayView { return st.gateway }

// Stats counts what the group did, for Fleet.Publish to add.
func (st *Staging) Stats() *Stats { return &st.stats }
