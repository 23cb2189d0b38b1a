package gateway

import (
	"log/slog"
	"strings"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// failureLogInterval spaces the lines about a failure that goes on: one at
// once, then one a minute saying how many were held back.
const failureLogInterval = time.Minute

// failureLog reports a failure that repeats at every poll without flooding
// the log, and its end. It never writes the API key: a reason that somehow
// holds it (an answer echoing it) has it masked.
type failureLog struct {
	logger  *slog.Logger
	limiter *ratelog.Limiter
	now     func() time.Time
	key     string
	msg     string
	// failing since first, total times.
	failing bool
	first   time.Time
	total   int
}

func newFailureLog(logger *slog.Logger, now func() time.Time, key, msg string) *failureLog {
	return &failureLog{logger: logger, limiter: ratelog.New(failureLogInterval, now), now: now, key: key, msg: msg}
}

func (l *failureLog) failed(reason string) {
	if !l.failing {
		l.failing, l.first = true, l.now()
	}
	l.total++
	l.limiter.Log(l.logger, slog.LevelWarn, l.msg, "reason", l.mask(reason), "failing_since", l.first)
}

// succeeded ends a failure, saying so (at most once a minute) if there was
// one.
func (l *failureLog) succeeded(msg string) {
	if l.failing {
		l.limiter.Log(l.logger, slog.LevelInfo, msg, "failures", l.total, "failing_since", l.first)
	}
	l.failing, l.total = false, 0
}

// mask hides the key, should an answer have echoed it.
func (l *failureLog) mask(s string) string {
	if len(l.key) < 8 {
		return s // too short to tell from other text; it is never put in a reason
	}
	return strings.ReplaceAll(s, l.key, "<api-key>")
}
