package gateway

import (
	"log/slog"
	"sync"
)

// Bounds of the lines about skipped items: an answer of thousands of bad
// items writes maxItemLines lines and one that counts the rest, and the
// items of an episode that are remembered are at most maxTrackedItems (one
// forgotten is logged again at a later poll, within maxItemLines).
const (
	maxItemLines    = 10
	maxTrackedItems = 10_000
)

// skippedLog counts the items successful polls skipped, in
// liveswitch_api_invalid_items_total, at every poll that skips them, and
// logs each once per episode: when a poll skips it and the one before did
// not. It also says, once while it lasts, that the Gateway lists more
// applications than one poll reads.
type skippedLog struct {
	logger  *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	last   map[skippedKey]bool // skipped by the last successful poll
	unread int
}

type skippedKey struct{ endpoint, reason, item string }

// report counts and logs what a successful poll skipped; of listed
// applications, it left unread unread.
func (l *skippedLog) report(skipped []skippedItem, listed, unread int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := make(map[skippedKey]bool, min(len(skipped), maxTrackedItems))
	logged, more := 0, 0
	for _, s := range skipped {
		l.metrics.invalid.WithLabelValues(s.endpoint, s.reason).Inc()
		k := skippedKey{s.endpoint, s.reason, s.item}
		if l.last[k] || now[k] {
			now[k] = true
			continue
		}
		if len(now) < maxTrackedItems {
			now[k] = true
		}
		if logged == maxItemLines {
			more++
			continue
		}
		logged++
		l.logger.Warn("An item of the Gateway's answer was skipped", "endpoint", s.endpoint, "item", s.item,
			"reason", s.reason, "detail", s.detail)
	}
	if more > 0 {
		l.logger.Warn("More items of the Gateway's answer were skipped; see liveswitch_api_invalid_items_total", "more_skipped", more)
	}
	if len(skipped) == 0 && len(l.last) > 0 {
		l.logger.Info("Every item of the Gateway's answers is read again")
	}
	l.last = now
	l.reportUnread(listed, unread)
}

// reportUnread says that the Gateway lists more applications than a poll
// reads, once while it lasts.
func (l *skippedLog) reportUnread(listed, unread int) {
	l.metrics.unread.Set(float64(unread))
	switch {
	case unread > 0 && l.unread == 0:
		l.logger.Warn("The Gateway lists more applications than one poll reads; the others have no series",
			"listed", listed, "read", listed-unread, "limit", maxApplications)
	case unread == 0 && l.unread > 0:
		l.logger.Info("The Gateway lists no more applications than one poll reads")
	}
	l.unread = unread
}
