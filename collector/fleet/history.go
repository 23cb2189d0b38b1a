package fleet

import (
	"math"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ring"
)

// HistoryLen is how many applied lifecycle events the fleet remembers per
// server, for the status page and the API: enough to see a flap or a rolling
// restart, bounded so that memory does not grow with a server's age.
const HistoryLen = 20

// AppliedEvent is one lifecycle event as the fleet applied it.
type AppliedEvent struct {
	Action event.Action
	// EventMs is when LiveSwitch stamped the event.
	EventMs int64
	// ReceivedMs is the exporter's clock when the webhook came in.
	ReceivedMs int64
}

// history is a server's last applied lifecycle events.
type history = ring.Buffer[storedEvent]

// storedEvent is an AppliedEvent in 16 bytes rather than 24: the received
// time is kept as its distance from the event time (exact within ±24 days),
// so that a full history costs a third less of the fleet's memory.
type storedEvent struct {
	eventMs       int64
	receivedDelta int32
	action        event.Action
}

func store(e AppliedEvent) storedEvent {
	d := max(min(e.ReceivedMs-e.EventMs, math.MaxInt32), math.MinInt32)
	return storedEvent{eventMs: e.EventMs, receivedDelta: int32(d), action: e.Action}
}

func (s storedEvent) applied() AppliedEvent {
	return AppliedEvent{Action: s.action, EventMs: s.eventMs, ReceivedMs: s.eventMs + int64(s.receivedDelta)}
}

// applied is an AppliedEvent staged for a server.
type applied struct {
	key Key
	ev  AppliedEvent
}

// Server returns a copy of one server's record and its last applied
// lifecycle events, newest first.
func (f *Fleet) Server(k Key) (Server, []AppliedEvent, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.servers[k]
	if !ok {
		return Server{}, nil, false
	}
	var events []AppliedEvent
	if h := f.history[k]; h != nil {
		for _, e := range h.NewestFirst() {
			events = append(events, e.applied())
		}
	}
	return *s, events, true
}
