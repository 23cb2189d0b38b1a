package applications

import (
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"strings"
)

// kinds are the application event types LiveSwitch documents (its SDK's
// EventType), each with what it does to the state: only these are counted
// under their type, any other type is counted as ignored, so that a sender
// cannot grow the event label.
var kinds = map[string]callstate.Op{
	"channel.activated": callstate.OpChannelOn, "channel.deactivated": callstate.OpChannelOff,
	"channel.client.joined": callstate.OpChannelJoin, "channel.client.left": callstate.OpChannelLeave,
	"client.registered": callstate.OpClientOn, "client.unregistered": callstate.OpClientOff, "client.updated": callstate.OpNone, "client.stats": callstate.OpNone,
	"connection.initializing": callstate.OpConnectionStart, "connection.connecting": callstate.OpNone, "connection.connected": callstate.OpConnectionUp,
	"connection.updated": callstate.OpNone, "connection.failing": callstate.OpNone, "connection.failed": callstate.OpConnectionFail,
	"connection.closing": callstate.OpNone, "connection.closed": callstate.OpConnectionClose, "connection.stats": callstate.OpNone,
}

// Kinds returns the documented event types, the values of the event label.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	return out
}

// The event types the Tracker names.
const (
	connected = "connection.connected"
	failed    = "connection.failed"
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
