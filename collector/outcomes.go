package collector

import (
	"sync"
	"time"
)

// OutcomeCounter counts events this exporter handled outside the fleet's
// writer: application events, which are counted per replica and never
// stored. A Collector given one with CountAlso adds its counts to
// liveswitch_exporter_events_total, so that family keeps counting every
// event received on the webhook once.
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

// AddResult counts the outcomes of res, received at the exporter's time at.
func (c *OutcomeCounter) AddResult(res Result, at time.Time) {
	for o, n := range res.Outcomes {
		c.Add(Outcome(o), n, at)
	}
}

// Stats returns the counts as the fleet's Stats carry them.
func (c *OutcomeCounter) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Outcomes: c.outcomes, LastReceivedMs: c.lastReceivedMs}
}
