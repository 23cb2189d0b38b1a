package applications

import (
	"cmp"
	"slices"
	"time"
)

// RecentWindow is how far back Tracker.Recent looks: the status page's
// "last 5 minutes".
const RecentWindow = 5 * time.Minute

// recentStep is the width of one slot of an application's recent counts:
// the window is counted in half-minute steps, so that it covers between
// 4.5 and 5 minutes of the exporter's clock.
const recentStep = 30 * time.Second

const recentSlots = int(RecentWindow / recentStep)

// setupBins are the setup-time histogram's buckets, +Inf included.
const setupBins = 12

// stepCounts is what one application did in one step of the exporter's
// clock. Counts of uint32 are ample for half a minute of one application.
type stepCounts struct {
	step                      int64 // recentStep since the epoch; a slot of an older step is stale
	events, connected, failed uint32
	setup                     [setupBins]uint32 // per SetupBuckets, then +Inf
}

// recent holds one application's counts of the last recentSlots steps, a
// fixed 680 bytes whatever its traffic, so that the status page can say
// what an application does now (the counters say what it did since the
// start). It lives and dies with the application's slot in the Tracker.
type recent [recentSlots]stepCounts

// slot returns the counts of the step of now, emptied if it held an older
// step.
func (r *recent) slot(now time.Time) *stepCounts {
	step := now.UnixMilli() / recentStep.Milliseconds()
	s := &r[step%int64(recentSlots)]
	if s.step != step {
		*s = stepCounts{step: step}
	}
	return s
}

// count adds one event of type typ received at now; setup is the setup
// time it completed, if observed.
func (r *recent) count(now time.Time, typ string, setup float64, observed bool) {
	s := r.slot(now)
	s.events++
	switch typ {
	case connected:
		s.connected++
	case failed:
		s.failed++
	}
	if observed {
		i, _ := slices.BinarySearch(SetupBuckets, setup) // the first bucket whose bound is >= setup
		s.setup[i]++
	}
}

// Recent is what one application did in the last RecentWindow, by the
// exporter's clock, as this replica received it.
type Recent struct {
	ID string
	// Events counts the application's counted events (documented types).
	Events uint64
	// Connected and Failed count connection.connected and
	// connection.failed events.
	Connected, Failed uint64
	// Setup counts observed setup times per SetupBuckets, the last element
	// being those above the last bound.
	Setup [setupBins]uint64
}

// sum adds the steps of r within the window ending at now.
func (r *recent) sum(id string, now time.Time) Recent {
	out := Recent{ID: id}
	oldest := now.UnixMilli()/recentStep.Milliseconds() - int64(recentSlots) + 1
	for i := range r {
		s := &r[i]
		if s.step < oldest || s.step > oldest+int64(recentSlots)-1 {
			continue
		}
		out.Events += uint64(s.events)
		out.Connected += uint64(s.connected)
		out.Failed += uint64(s.failed)
		for b, n := range s.setup {
			out.Setup[b] += uint64(n)
		}
	}
	return out
}

// FailureRatio is failed / (connected + failed), the ratio the
// connection-failure alert watches; ok is false without either.
func (r *Recent) FailureRatio() (ratio float64, ok bool) {
	n := r.Connected + r.Failed
	if n == 0 {
		return 0, false
	}
	return float64(r.Failed) / float64(n), true
}

// SetupQuantile estimates the q-quantile of the setup times as
// Prometheus' histogram_quantile does, interpolating within a bucket. ok
// is false without any setup; above is true when the quantile lies beyond
// the last bound, which is then returned.
func (r *Recent) SetupQuantile(q float64) (seconds float64, above, ok bool) {
	var total uint64
	for _, n := range r.Setup {
		total += n
	}
	if total == 0 {
		return 0, false, false
	}
	rank := q * float64(total)
	var below uint64
	for b, n := range r.Setup {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if b == len(SetupBuckets) {
			return SetupBuckets[b-1], true, true
		}
		lower := 0.0
		if b > 0 {
			lower = SetupBuckets[b-1]
		}
		return lower + (SetupBuckets[b]-lower)*(rank-float64(below))/float64(n), false, true
	}
	return SetupBuckets[len(SetupBuckets)-1], true, true // not reached: rank <= total
}

// Recent returns, sorted by id, what each application counted did in the
// last RecentWindow (applications without events in it included, with
// zeros).
func (t *Tracker) Recent() []Recent {
	now := t.opts.Now()
	t.mu.Lock()
	out := make([]Recent, 0, len(t.apps))
	for id, r := range t.apps {
		out = append(out, r.recent.sum(id, now))
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Recent) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
