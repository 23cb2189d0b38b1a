package fleet

import "github.com/liveswitch-exporter/liveswitch_exporter/collector/event"

// State is where a server process stands in its lifecycle.
type State uint8

// The states of a server. Running is "up but not (yet) registered with a
// Gateway": the state the paging alert watches for media servers.
const (
	StateRunning State = iota
	StateRegistered
	StateUnregistered
	StateStopped
	// NumStates is the number of states: the size of arrays indexed by
	// State.
	NumStates
)

var stateNames = [NumStates]string{"running", "registered", "unregistered", "stopped"}

// String returns the state as exported in the state label.
func (s State) String() string {
	if s < NumStates {
		return stateNames[s]
	}
	return "unknown"
}

// ParseState is the inverse of State.String, for API filters and stores.
func ParseState(s string) (State, bool) {
	for i, name := range stateNames {
		if s == name {
			return State(i), true
		}
	}
	return 0, false
}

// stateAfter is the state each lifecycle action leads to.
var stateAfter = [event.NumActions]State{
	event.ActionStarted:      StateRunning,
	event.ActionRegistered:   StateRegistered,
	event.ActionUnregistered: StateUnregistered,
	event.ActionStopped:      StateStopped,
}

// Server is everything the exporter keeps about one server process. It is a
// value: the fleet never changes a Server in place but replaces it, so a
// snapshot taken for a scrape stays consistent while events keep arriving.
type Server struct {
	Origin string     `json:"origin"`
	Info   event.Info `json:"info"`
	State  State      `json:"state"`
	// LastEventMs is the event time of the newest applied event, heartbeats
	// included.
	LastEventMs int64 `json:"last_event_ms"`
	// LastActionMs and LastAction identify the newest applied lifecycle
	// event; they alone decide whether a later delivery is in order. Every
	// lifecycle event (re-)enters its state, so LastActionMs is also when the
	// current state was entered; that keeps it independent of delivery order.
	LastActionMs int64        `json:"last_action_ms"`
	LastAction   event.Action `json:"last_action"`
	// Events counts applied lifecycle events by action.
	Events [event.NumActions]uint64 `json:"events"`
	// Flaps counts re-registrations without a stop in between.
	Flaps uint64 `json:"flaps"`
	// ReconciledMs is the exporter's clock at the poll of the Gateway's API
	// that set the current state (see Reconcile), 0 when a real event did.
	// A poll never moves LastActionMs: its clock is not LiveSwitch's, and a
	// real event delivered after it must not be taken for older news.
	ReconciledMs int64 `json:"reconciled_ms,omitempty"`
	// StateReceivedMs is the exporter's clock when the current state was
	// entered: when its event was received, or the poll that set it. The
	// two-interval rule of Reconcile compares it with a poll's time, both on
	// the exporter's clock whatever LiveSwitch's says. 0 in records written
	// before it existed.
	StateReceivedMs int64 `json:"state_received_ms,omitempty"`
}

// Key identifies one server of the fleet: LiveSwitch ids are only unique per
// kind of server process.
type Key struct {
	Origin string `json:"o"`
	ID     string `json:"i"`
}

// Key returns the server's identity in the fleet.
func (s *Server) Key() Key { return Key{Origin: s.Origin, ID: s.Info.ID} }

// SinceMs is when the server entered its current state: the event time of
// the event that moved it there, or the poll that did (ReconciledMs).
func (s *Server) SinceMs() int64 {
	if s.ReconciledMs != 0 {
		return s.ReconciledMs
	}
	return s.LastActionMs
}

// stateReceivedMs is when the current state was entered by the exporter's
// clock; a record from before StateReceivedMs existed falls back on the
// event time, as it did then.
func (s *Server) stateReceivedMs() int64 {
	if s.StateReceivedMs != 0 {
		return s.StateReceivedMs
	}
	return s.SinceMs()
}

// Up reports whether the process is running, registered or not.
func (s *Server) Up() bool { return s.State != StateStopped }

// States lists every state, in their order; views iterate it so that a new
// state shows everywhere.
func States() []State {
	out := make([]State, NumStates)
	for i := range out {
		out[i] = State(i)
	}
	return out
}

// mergeInfo returns i updated with every field that newer carries: LiveSwitch's
// payloads differ by event kind (region only with registrations, say), and a
// sparse event must not blank what an earlier one told.
func mergeInfo(i, newer event.Info) event.Info {
	set := func(dst *string, src string) {
		// An equal string is not taken: the record keeps the one it has,
		// rather than the event's (and the memory the event's hold).
		if src != "" && src != *dst {
			*dst = src
		}
	}
	set(&i.Version, newer.Version)
	set(&i.MachineName, newer.MachineName)
	set(&i.OperatingSystem, newer.OperatingSystem)
	set(&i.OperatingSystemVersion, newer.OperatingSystemVersion)
	set(&i.Architecture, newer.Architecture)
	set(&i.DeploymentID, newer.DeploymentID)
	set(&i.Region, newer.Region)
	if newer.CoreCount > 0 {
		i.CoreCount = newer.CoreCount
	}
	return i
}
