package collector

import "github.com/liveswitch-exporter/liveswitch_exporter/internal/ring"

// HistoryLen is how many applied lifecycle events the fleet remembers per
// server, for the status page and the API: enough to see a flap or a rolling
// restart, bounded so that memory does not grow with a server's age.
const HistoryLen = 20

// AppliedEvent is one lifecycle event as the fleet applied it.
type AppliedEvent struct {
	Action Action
	// EventMs is when LiveSwitch stamped the event.
	EventMs int64
	// ReceivedMs is the exporter's clock when the webhook came in.
	ReceivedMs int64
}

// history is a server's last applied lifecycle events.
type history = ring.Buffer[AppliedEvent]

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
	if r := f.history[k]; r != nil {
		events = r.NewestFirst()
	}
	return *s, events, true
}
