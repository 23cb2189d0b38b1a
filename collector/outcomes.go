package collector

import (
	"sync"
	"time"
)

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
	outcomes       [numOutcomes]uint64
	lastReceivedMs int64
}

// Add counts n events of outcome o, received at the exporter's time at.
func (c *OutcomeCounter) Add(o Outcome, n int, at time.Time) {
	if o >= numOutcomes || n <= 0 {
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
