package simulate

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// Retry is how a sender retries a delivery that got no answer, a 5xx or a
// 429, as a LiveSwitch server retries its webhooks. LiveSwitch documents
// neither its schedule nor its bound (only an older "Reliable" option that
// keeps retrying until it succeeds), so the simulator does what webhook
// senders commonly do: waits that double from First up to Max, each
// randomised by ±50% so that senders spread out, for up to For after the
// event was sent. A 4xx other than 429 is not retried: the body is bad.
type Retry struct {
	// For bounds the retries of an event, from when it was handed to its
	// sender; the last attempt starts before it ends. 0 never retries.
	// (A LiveSwitch server retries each webhook on its own; the simulator
	// keeps each server's events in order, so those waiting behind a
	// retried one spend their time waiting, and are not retried for long
	// after it.)
	For time.Duration
	// First is the wait before the first retry (DefaultRetry's when 0),
	// Max the longest wait (DefaultRetry's when 0).
	First, Max time.Duration
}

// DefaultRetry is the simulate command's: an exporter started up to five
// minutes after the simulator loses nothing.
var DefaultRetry = Retry{For: 5 * time.Minute, First: time.Second, Max: 30 * time.Second}

// wait is how long to wait after the failed attempt number attempt (from 0).
func (r Retry) wait(attempt int) time.Duration {
	first, most := r.First, r.Max
	if first <= 0 {
		first = DefaultRetry.First
	}
	if most <= 0 {
		most = max(DefaultRetry.Max, first)
	}
	d := first
	for range attempt {
		if d >= most/2 {
			d = most
			break
		}
		d *= 2
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// targetHealth tells, for all senders, when the target stops answering and
// when it answers again, without a line per failed request; and wakes the
// senders waiting to retry once one of them got an answer, so that an
// exporter started after the simulator gets the backlog at once rather
// than after the longest wait.
type targetHealth struct {
	logs   *ratelog.Limiter
	logger *slog.Logger
	mu     sync.Mutex
	// failures counts failed attempts since the last answer.
	failures int
	// back is closed when the target answers after failures.
	back chan struct{}
}

func newTargetHealth(logger *slog.Logger) *targetHealth {
	return &targetHealth{logs: ratelog.New(5*time.Second, nil), logger: logger, back: make(chan struct{})}
}

// failing counts a failed attempt, and returns what is closed once the
// target answers again.
func (h *targetHealth) failing(why string, err error, wait time.Duration) <-chan struct{} {
	h.mu.Lock()
	h.failures++
	back := h.back
	h.mu.Unlock()
	h.logs.Log(h.logger, slog.LevelWarn, "The target did not take a delivery; retrying",
		append(reason(why, err), "retry_in", wait.Round(time.Millisecond))...)
	return back
}

func (h *targetHealth) answered() {
	h.mu.Lock()
	failures := h.failures
	if failures > 0 {
		close(h.back)
		h.back = make(chan struct{})
	}
	h.failures = 0
	h.mu.Unlock()
	if failures > 0 {
		h.logger.Info("The target answers again", "failed_attempts", failures)
	}
}

func (h *targetHealth) lost(why string, err error, events int) {
	h.logs.Log(h.logger, slog.LevelError, "Events lost: their retries ran out", append(reason(why, err), "events", events)...)
}

// reason is why an attempt failed, for the log: the error without the URL
// a *url.Error carries, since the webhook URL may hold a token in its query.
func reason(why string, err error) []any {
	if err == nil {
		return []any{"reason", why}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return []any{"reason", why, "err", err}
}
