package callstate

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
