package event

import "fmt"

// Action is what a server event says happened to a server process. The order
// of the constants is the lifecycle order; it breaks ties between events of one
// server that carry the same millisecond timestamp, so that the resulting state
// never depends on the order in which LiveSwitch delivered them.
type Action uint8

// The four lifecycle actions LiveSwitch reports for its server processes.
const (
	ActionStarted Action = iota
	ActionRegistered
	ActionUnregistered
	ActionStopped
	// NumActions is the number of actions: the size of arrays indexed by
	// Action.
	NumActions
)

var actionNames = [NumActions]string{"started", "registered", "unregistered", "stopped"}

// String returns the action as LiveSwitch spells it in an event type.
func (a Action) String() string {
	if a < NumActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

func parseAction(s string) (Action, bool) {
	for i, name := range actionNames {
		if s == name {
			return Action(i), true
		}
	}
	return 0, false
}

// Kind sorts received events by what the fleet may do with them.
type Kind uint8

const (
	// KindLifecycle events (started, stopped, registered, unregistered) change
	// a server's state and create servers the fleet does not know yet.
	KindLifecycle Kind = iota
	// KindHeartbeat events (<origin>.stats) only prove that a known server is
	// alive; they never change its state and never create a server.
	KindHeartbeat
	// KindIgnored events are well-formed but not about server state:
	// client, channel and connection events, or event kinds this exporter does
	// not know (LiveSwitch adds kinds over time).
	KindIgnored
)

// Event is one decoded LiveSwitch webhook event.
type Event struct {
	// Timestamp is the event time in milliseconds since the Unix epoch, as
	// LiveSwitch stamped it.
	Timestamp int64 `json:"t"`
	// Type is the event type as sent, e.g. "mediaserver.registered".
	Type   string `json:"y"`
	Kind   Kind   `json:"k"`
	Action Action `json:"a"`
	// Origin is the lower-cased origin, a valid label value.
	Origin string `json:"o"`
	// Server is the server object of the event; its ID is empty when a
	// heartbeat or ignored event carried none.
	Server Info `json:"s"`
}

// Info is what LiveSwitch tells about a server process in each event.
type Info struct {
	ID                     string `json:"id"`
	Version                string `json:"version,omitempty"`
	MachineName            string `json:"machineName,omitempty"`
	CoreCount              int    `json:"coreCount,omitempty"`
	OperatingSystem        string `json:"operatingSystem,omitempty"`
	OperatingSystemVersion string `json:"operatingSystemVersion,omitempty"`
	Architecture           string `json:"architecture,omitempty"`
	DeploymentID           string `json:"deploymentId,omitempty"`
	Region                 string `json:"region,omitempty"`
}
