// Package ratelog spaces out log lines that repeat: a failing store or an
// unreachable Redis under a flood of webhooks then writes one line per
// interval, with the number of lines it held back, instead of one per
// request.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter logs each message at most once per Every. The zero value is not
// usable; use New.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*entry
}

type entry struct {
	last time.Time
	held int
}

// New returns a Limiter of one line per message and interval every, by the
// clock now (time.Now when nil).
func New(every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{every: every, now: now, seen: map[string]*entry{}}
}

// Log logs msg with args at level, unless the same msg was logged less than
// the interval ago: then the line is held back and counted, and the next
// line of that msg says how many were held back ("repeated").
func (l *Limiter) Log(logger *slog.Logger, level slog.Level, msg string, args ...any) {
	if !logger.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	now := l.now()
	e := l.seen[msg]
	if e == nil {
		e = &entry{}
		l.seen[msg] = e
	} else if now.Sub(e.last) < l.every {
		e.held++
		l.mu.Unlock()
		return
	}
	held := e.held
	e.last, e.held = now, 0
	l.mu.Unlock()
	if held > 0 {
		args = append(args, "repeated", held, "over", l.every)
	}
	logger.Log(context.Background(), level, msg, args...)
}
