package fleet

import "time"

// Limits bound the fleet, so that /metrics cannot grow forever when servers
// get new ids on every restart, nor under a flood of made-up ids.
type Limits struct {
	// MaxServers caps the tracked servers; 0 means no cap. When the fleet is
	// full, a new server evicts the server stopped longest ago; when no
	// server is stopped, the new server is refused (not tracked).
	MaxServers int
	// Retention is how long a stopped server is kept after it stopped;
	// 0 keeps it until it is evicted or deleted.
	Retention time.Duration
	// StaleAfter forgets a server of any state from which no event has come
	// for this long; 0 never does (server events are rare).
	StaleAfter time.Duration
}

// DefaultLimits are the limits used when the operator sets none.
var DefaultLimits = Limits{MaxServers: 10000, Retention: time.Hour}

// ForgetReason says why a server was forgotten.
type ForgetReason uint8

// Reasons, as exported in liveswitch_exporter_servers_forgotten_total{reason}.
const (
	ForgetRetention ForgetReason = iota
	ForgetStale
	ForgetEvicted
	ForgetDeleted
	// NumForgetReasons is the number of reasons: the size of arrays indexed
	// by ForgetReason.
	NumForgetReasons
)

var reasonNames = [NumForgetReasons]string{"retention", "stale", "evicted", "deleted"}

// String returns the reason as exported in the reason label.
func (r ForgetReason) String() string {
	if r < NumForgetReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// expired says whether s is to be forgotten at now, and why.
func (l Limits) expired(s *Server, now time.Time) (ForgetReason, bool) {
	ms := now.UnixMilli()
	switch {
	case l.Retention > 0 && s.State == StateStopped && ms-s.SinceMs() >= l.Retention.Milliseconds():
		return ForgetRetention, true
	case l.StaleAfter > 0 && ms-s.LastEventMs >= l.StaleAfter.Milliseconds():
		return ForgetStale, true
	}
	return 0, false
}

// SweepInterval is how often expiry is to be checked (0: never, no limit
// expires): often enough that a server outlives its limit by a small
// fraction of it, never busier than once a second.
func (l Limits) SweepInterval() time.Duration {
	shortest := time.Duration(0)
	for _, d := range []time.Duration{l.Retention, l.StaleAfter} {
		if d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
	}
	if shortest == 0 {
		return 0
	}
	return min(max(shortest/20, time.Second), time.Minute)
}
