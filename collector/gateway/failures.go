package gateway

import (
	"log/slog"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// failureLogInterval spaces the lines about a failure that goes on with one
// reason: one at once, then one a minute saying how many were held back.
const failureLogInterval = time.Minute

// failureLog reports failures without flooding the log, nor hiding why:
// the first failure of an episode is logged at once, and so is each change
// of its reason (by kind); only repeats of one reason are rate-limited, with
// their count. The end of an episode is logged at once, with how many
// polls failed. It never writes the API key: a reason that holds a run of
// it (an answer echoing it) has it masked.
type failureLog struct {
	logger *slog.Logger
	now    func() time.Time
	mask   keyMask
	msg    string
	// The episode: failing since first, total times, lately for reason,
	// of kind; limiter spaces the repeats of kind.
	failing bool
	first   time.Time
	total   int
	reason  string
	kind    string
	limiter *ratelog.Limiter
}

func newFailureLog(logger *slog.Logger, now func() time.Time, mask keyMask, msg string) *failureLog {
	return &failureLog{logger: logger, now: now, mask: mask, msg: msg}
}

// failed records a failure; kind sorts its reason (reasons of one kind may
// differ in details that do not make a new reason).
func (l *failureLog) failed(kind, reason string) {
	reason = l.mask.mask(reason)
	args := []any{"reason", reason}
	switch {
	case !l.failing:
		l.failing, l.first, l.total, l.limiter = true, l.now(), 0, nil
	case kind != l.kind:
		args = append(args, "previous_reason", l.reason)
		l.limiter = nil
	}
	if l.limiter == nil { // a new episode or reason: its first line goes out at once
		l.kind, l.limiter = kind, ratelog.New(failureLogInterval, l.now)
	}
	l.reason = reason
	l.total++
	l.limiter.Log(l.logger, slog.LevelWarn, l.msg, append(args, "failures", l.total, "failing_since", l.first)...)
}

// succeeded ends a failure, saying so if there was one.
func (l *failureLog) succeeded(msg string) {
	if l.failing {
		l.logger.Info(msg, "failures", l.total, "failing_since", l.first, "last_reason", l.reason)
	}
	l.failing, l.total, l.limiter = false, 0, nil
}
