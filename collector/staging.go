package collector

import (
	"cmp"
	"slices"
	"time"
)

// staging holds the changes of one commit group on top of the committed
// fleet until they are durable. A nil entry marks a server to forget.
type staging struct {
	fleet   *Fleet
	limits  Limits
	changes map[Key]*Server
	// size and stopped count the fleet as it will be after the group.
	size, stopped int
	forgotten     [numReasons]uint64
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

// reset empties st for a new group on f, keeping its memory.
func (st *staging) reset(f *Fleet, limits Limits) {
	if st.changes == nil {
		st.changes = make(map[Key]*Server)
	}
	clear(st.changes)
	clear(st.applied)
	clear(st.evictable)
	*st = staging{fleet: f, limits: limits, changes: st.changes, applied: st.applied[:0], evictable: st.evictable[:0],
		size: len(f.servers), stopped: f.stopped}
}

func (st *staging) get(k Key) *Server {
	if s, ok := st.changes[k]; ok {
		return s
	}
	return st.fleet.lookup(k)
}

// set stages next (nil: forget) in place of prev.
func (st *staging) set(k Key, prev, next *Server) {
	st.changes[k] = next
	st.size += boolInt(next != nil) - boolInt(prev != nil)
	st.stopped += boolInt(next != nil && next.State == StateStopped) - boolInt(prev != nil && prev.State == StateStopped)
}

func (st *staging) apply(ev *Event) Outcome {
	if ev.Kind == KindIgnored || ev.Server.ID == "" {
		return OutcomeIgnored
	}
	k := Key{Origin: ev.Origin, ID: ev.Server.ID}
	prev := st.get(k)
	next, outcome := Step(prev, ev)
	if next == prev {
		return outcome
	}
	if prev == nil && st.full() && !st.evict() {
		return OutcomeRefused
	}
	st.set(k, prev, next)
	if ev.Kind == KindLifecycle {
		st.applied = append(st.applied, applied{k, AppliedEvent{ev.Action, ev.Timestamp, st.receivedMs}})
	}
	return outcome
}

func (st *staging) full() bool {
	return st.limits.MaxServers > 0 && st.size >= st.limits.MaxServers
}

// forget stages the removal of k; it reports whether k was tracked.
func (st *staging) forget(k Key, reason ForgetReason) bool {
	prev := st.get(k)
	if prev == nil {
		return false
	}
	st.set(k, prev, nil)
	st.forgotten[reason]++
	return true
}

// evict forgets the server stopped longest ago, if any is stopped.
func (st *staging) evict() bool {
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

func (st *staging) stoppedServers() []*Server {
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

// sweep forgets every server whose retention or staleness limit has passed;
// a media server the Gateway lists is not stale, whatever its webhooks.
// It returns how many it forgot.
func (st *staging) sweep(now time.Time) int {
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
