package gateway

import (
	"log/slog"
	"strings"
	"time"
)

// limitedLogInterval spaces the lines about a failure that goes on: one at
// once, then one a minute with the count, then one when it ends.
const limitedLogInterval = time.Minute

// limitedLog reports a repeated failure without flooding the log. It never
// writes the API key: a reason that somehow holds it has it masked.
type limitedLog struct {
	logger  *slog.Logger
	now     func() time.Time
	key     string
	msg     string
	failing bool
	// first is when the failure began, last when it was last reported.
	first, last time.Time
	// since counts failures since the last line, total since the first.
	since, total int
}

func newLimitedLog(logger *slog.Logger, now func() time.Time, key, msg string) *limitedLog {
	return &limitedLog{logger: logger, now: now, key: key, msg: msg}
}

func (l *limitedLog) failed(reason string) {
	l.since++
	l.total++
	now := l.now()
	if !l.failing {
		l.failing, l.first = true, now
	} else if now.Sub(l.last) < limitedLogInterval {
		return
	}
	l.logger.Warn(l.msg, "reason", l.mask(reason), "failures", l.since, "failing_since", l.first)
	l.last, l.since = now, 0
}

// succeeded ends a failure, saying so if one was reported.
func (l *limitedLog) succeeded(msg string) {
	if l.failing {
		l.logger.Info(msg, "failures", l.total, "failing_since", l.first)
	}
	l.failing, l.since, l.total = false, 0, 0
}

// mask hides the key, should an answer have echoed it.
func (l *limitedLog) mask(s string) string {
	if len(l.key) < 8 {
		return s // too short to tell from other text; it is never put in a reason
	}
	return strings.ReplaceAll(s, l.key, "<api-key>")
}
