package applications

import "strings"

// kinds are the application event types LiveSwitch documents (its SDK's
// EventType), each with what it does to the state: only these are counted
// under their type, any other type is counted as ignored, so that a sender
// cannot grow the event label.
var kinds = map[string]Op{
	"channel.activated": OpChannelOn, "channel.deactivated": OpChannelOff,
	"channel.client.joined": OpChannelJoin, "channel.client.left": OpChannelLeave,
	"client.registered": OpClientOn, "client.unregistered": OpClientOff, "client.updated": OpNone, "client.stats": OpNone,
	"connection.initializing": OpConnectionStart, "connection.connecting": OpNone, "connection.connected": OpConnectionUp,
	"connection.updated": OpNone, "connection.failing": OpNone, "connection.failed": OpConnectionFail,
	"connection.closing": OpNone, "connection.closed": OpConnectionClose, "connection.stats": OpNone,
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

// Op is what an event does to the state of its channel, client or
// connection.
type Op uint8

// Ops. A connection is held from its initializing (or its connected) to
// its closed or failed; a channel from its activated (or a client's
// joining) to its deactivated; a client from its registered to its
// unregistered.
const (
	// OpNone: the event is counted and remembered, and changes nothing.
	OpNone Op = iota
	OpConnectionStart
	OpConnectionUp
	OpConnectionClose
	OpConnectionFail
	OpChannelOn
	OpChannelJoin
	OpChannelLeave
	OpChannelOff
	OpClientOn
	OpClientOff
	numOps
)

// Table names the entity an Op changes.
type Table uint8

// Tables, as exported in the table label.
const (
	TableConnections Table = iota
	TableChannels
	TableClients
	NumTables
)

var tableNames = [NumTables]string{"connections", "channels", "clients"}

// String returns the table as exported in the table label.
func (t Table) String() string { return tableNames[t] }

// Table is the table op changes; ok is false for OpNone.
func (op Op) Table() (t Table, ok bool) {
	switch op {
	case OpConnectionStart, OpConnectionUp, OpConnectionClose, OpConnectionFail:
		return TableConnections, true
	case OpChannelOn, OpChannelJoin, OpChannelLeave, OpChannelOff:
		return TableChannels, true
	case OpClientOn, OpClientOff:
		return TableClients, true
	}
	return 0, false
}

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
