package fleet

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Outcome is what the fleet did with one received event.
type Outcome uint8

// Outcomes, as exported in liveswitch_exporter_events_total{outcome}.
const (
	OutcomeApplied Outcome = iota
	// OutcomeDuplicate: the same event (server, type, timestamp) was applied
	// already; LiveSwitch retried a delivery.
	OutcomeDuplicate
	// OutcomeOutOfOrder: an event older than the newest one applied to its
	// server, delivered late.
	OutcomeOutOfOrder
	// OutcomeIgnored: well-formed, but not about a tracked server's state.
	OutcomeIgnored
	// OutcomeRefused: a new server while the fleet is full and no server is
	// stopped (see Limits.MaxServers); the server is not tracked.
	OutcomeRefused
	// OutcomeInvalid: rejected as malformed; counted by the ingest path, never
	// returned by Step.
	OutcomeInvalid
	// NumOutcomes is the number of outcomes: the size of arrays indexed by
	// Outcome.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"applied", "duplicate", "out_of_order", "ignored", "refused", "invalid"}

// String returns the outcome as exported in the outcome label.
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Result tells what became of the work of one request: a webhook's events,
// a forget, a sweep. It is the writer's answer, and the application
// tracker's.
type Result struct {
	// Outcomes counts the request's events by outcome.
	Outcomes [NumOutcomes]int
	// Pending counts events that are stored but whose outcome this exporter
	// could not see in time (a replica that had not folded them yet).
	Pending int
	// Forgotten counts the servers the request forgot.
	Forgotten int
}

// Total is the number of events the request held.
func (r Result) Total() int {
	n := r.Pending
	for _, c := range r.Outcomes {
		n += c
	}
	return n
}

// AllApplied reports whether every event of the request is known to have
// changed the fleet (and there was at least one).
func (r Result) AllApplied() bool {
	return r.Pending == 0 && r.Outcomes[OutcomeApplied] > 0 && r.Outcomes[OutcomeApplied] == r.Total()
}

// String lists the non-zero outcomes, e.g. "applied=2 duplicate=1", and
// "pending=N" for events stored whose outcome is not known yet.
func (r Result) String() string {
	var parts []string
	for i, n := range r.Outcomes {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", Outcome(i), n))
		}
	}
	if r.Pending > 0 {
		parts = append(parts, fmt.Sprintf("pending=%d", r.Pending))
	}
	return strings.Join(parts, " ")
}

// OutcomeCounter counts the events this exporter handled outside the
// fleet's writer (application events, counted per replica and never
// stored) that it did not take: invalid, or refused beyond
// --application.max. A Collector given one with CountAlso adds them to
// liveswitch_exporter_events_total. The events it took are counted in the
// application families only: the other outcomes of that family are the
// shared fleet's, identical on every replica, and per-replica counts mixed
// into them would be counted once per replica by the de-duplicated panels.
type OutcomeCounter struct {
	mu             sync.Mutex
	outcomes       [NumOutcomes]uint64
	lastReceivedMs int64
}

// Add counts n events of outcome o, received at the exporter's time at.
func (c *OutcomeCounter) Add(o Outcome, n int, at time.Time) {
	if o >= NumOutcomes || n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcomes[o] += uint64(n)
	c.lastReceivedMs = max(c.lastReceivedMs, at.UnixMilli())
}

// AddResult counts the events res refused, and that events came in at the
// exporter's time at.
func (c *OutcomeCounter) AddResult(res Result, at time.Time) {
	c.Add(OutcomeRefused, res.Outcomes[OutcomeRefused], at)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastReceivedMs = max(c.lastReceivedMs, at.UnixMilli())
}

// Stats returns the counts as the fleet's Stats carry them.
func (c *OutcomeCounter) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Outcomes: c.outcomes, LastReceivedMs: c.lastReceivedMs}
}
