package fleet

import "github.com/liveswitch-exporter/liveswitch_exporter/collector/event"

// Step is the one rule by which an event changes a server. prev is the
// server's current record, nil if the fleet does not know it; receivedMs is
// the exporter's clock when the event was received. Step never modifies
// prev: it returns the record that replaces it (prev itself when nothing
// changes, nil when an unknown server stays unknown).
//
// Events of one server are ordered by (timestamp, lifecycle order of the
// action), so the state after a set of events does not depend on the order in
// which they were delivered. Only real events take part in that order: a
// state a poll of the Gateway set (Reconcile) gives way to any real event
// delivered after it that is newer than the server's last real one.
func Step(prev *Server, ev *event.Event, receivedMs int64) (*Server, Outcome) {
	switch ev.Kind {
	case event.KindHeartbeat:
		return heartbeat(prev, ev)
	case event.KindLifecycle:
		return lifecycle(prev, ev, receivedMs)
	default:
		return prev, OutcomeIgnored
	}
}

func heartbeat(prev *Server, ev *event.Event) (*Server, Outcome) {
	if prev == nil || ev.Timestamp <= prev.LastEventMs {
		return prev, OutcomeIgnored
	}
	next := *prev
	next.LastEventMs = ev.Timestamp
	return &next, OutcomeApplied
}

func lifecycle(prev *Server, ev *event.Event, receivedMs int64) (*Server, Outcome) {
	var next Server
	if prev != nil {
		switch {
		case ev.Timestamp == prev.LastActionMs && ev.Action == prev.LastAction:
			return prev, OutcomeDuplicate
		case ev.Timestamp < prev.LastActionMs ||
			(ev.Timestamp == prev.LastActionMs && ev.Action < prev.LastAction):
			return prev, OutcomeOutOfOrder
		}
		next = *prev
	} else {
		next = Server{Origin: ev.Origin, Info: event.Info{ID: ev.Server.ID}}
	}
	if prev != nil && prev.State == StateUnregistered && ev.Action == event.ActionRegistered {
		next.Flaps++
	}
	next.State = stateAfter[ev.Action]
	next.Info = mergeInfo(next.Info, ev.Server)
	next.LastAction, next.LastActionMs = ev.Action, ev.Timestamp
	next.ReconciledMs, next.StateReceivedMs = 0, receivedMs
	next.LastEventMs = max(next.LastEventMs, ev.Timestamp)
	next.Events[ev.Action]++
	return &next, OutcomeApplied
}
