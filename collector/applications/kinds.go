package applications

import "strings"

// kinds are the application event types LiveSwitch documents (its SDK's
// EventType). Only these are counted under their type: any other type is
// counted as ignored, so that a sender cannot grow the event label.
var kinds = map[string]bool{
	"channel.activated": true, "channel.deactivated": true,
	"channel.client.joined": true, "channel.client.left": true,
	"client.registered": true, "client.unregistered": true, "client.updated": true, "client.stats": true,
	"connection.initializing": true, "connection.connecting": true, "connection.connected": true,
	"connection.updated": true, "connection.failing": true, "connection.failed": true,
	"connection.closing": true, "connection.closed": true, "connection.stats": true,
}

// Kinds returns the documented event types, the values of the event label.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	return out
}

// The event types that move a connection through the pending table.
const (
	initializing = "connection.initializing"
	connected    = "connection.connected"
	failed       = "connection.failed"
	closed       = "connection.closed"
)

// connectionTypes are the connection types LiveSwitch names; any other
// value is "other", a missing one "unknown", so that the connection_type
// label stays a closed set.
var connectionTypes = []string{"sfu", "mcu", "peer"}

// connectionType returns the label value of a connection's type.
func connectionType(t string) string {
	if t == "" {
		return "unknown"
	}
	for _, known := range connectionTypes {
		if strings.EqualFold(t, known) {
			return known
		}
	}
	return "other"
}
