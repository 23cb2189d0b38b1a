package gateway

import (
	"sync"
	"time"
)

// lastFailure remembers this exporter's last failed poll, for the status
// page; the poller's loop writes it, any request may read it.
type lastFailure struct {
	mu     sync.Mutex
	at     time.Time
	reason string
}

func (l *lastFailure) set(at time.Time, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at, l.reason = at, reason
}

// LastFailure returns when this exporter's last poll of the API began that
// failed, and why, in the words of its log line: the endpoint and the
// reason, never the URL, the API key masked. It is zero before any
// failure, and stays after the API answers again (the fleet's view tells
// when the last poll succeeded).
func (p *Poller) LastFailure() (at time.Time, reason string) {
	p.last.mu.Lock()
	defer p.last.mu.Unlock()
	return p.last.at, p.last.reason
}
