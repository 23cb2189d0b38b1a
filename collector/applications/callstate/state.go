package callstate

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"
)

// State holds what pairs the two ends of a connection, a channel or a
// client (the tables of those started and not yet ended) and the memory of
// the events counted, so that a retried or replayed event counts once. It
// is this process's memory (NewMemory), or shared by replicas in
// Redis (package redisstate), so that two ends that reach different
// replicas still pair up and an event retried to another replica is still
// a duplicate.
//
// Both implementations follow the same rules, which the Tracker relies on:
//
//   - An event whose Seen key was remembered already is a duplicate and
//     changes nothing. Otherwise it is remembered until its event time is
//     older than Limits.MaxEventAge, at most Limits.MaxRemembered events at
//     once (spread evenly over the minutes of event time the window holds);
//     past that, it is applied unremembered.
//   - OpConnectionStart enters the connection (start: the event time; a
//     second start keeps the earlier); OpConnectionUp enters it if it is
//     not held, and records its connected time once: when the connection
//     had started, at or before it, the setup time is the effect.
//     OpConnectionClose and OpConnectionFail remove it: the time it was up
//     for is the effect when it had connected (at or before the end), and
//     the phase says whether it had connected, only started, or was not
//     held.
//   - OpChannelOn enters the channel (its activation time once);
//     OpChannelJoin enters it if need be and adds a client, raising its
//     peak; OpChannelLeave takes one away (never below zero);
//     OpChannelOff removes it: its duration and peak are the effect when
//     its activation was seen (at or before the end).
//   - OpClientOn enters a client, OpClientOff removes it.
//   - An entry lives until its deadline by the exporter's clock:
//     Limits.PendingTTL for a connection not yet connected, Limits.OpenTTL
//     for the others (reset when a connection connects). An entry past its
//     deadline is gone: dropped as expired. A table holds at most
//     Limits.MaxEntries of its table; a new entry in a full table drops the
//     one with the earliest deadline (evicted).
//   - Levels are the entries held per application and table, and the most
//     clients of one of its channels.
type State interface {
	// Apply applies facts in order, at the exporter's time now, and writes
	// what each did to effects (as long as facts). Either all are applied
	// or, with an error, none.
	Apply(ctx context.Context, facts []Fact, now time.Time, effects []Effect) (Drops, error)
	// Sweep drops what expired by now.
	Sweep(ctx context.Context, now time.Time) (Drops, error)
	// Levels returns the levels of apps, in their order.
	Levels(ctx context.Context, apps []string) ([]Levels, error)
	// Sizes returns the entries held per table and the events remembered.
	Sizes(ctx context.Context, now time.Time) (Sizes, error)
}

// Key identifies an entity or an event: the first 16 bytes of the SHA-256
// of its identity, the same in every replica, of fixed size whatever the
// ids' length, and not to be collided on purpose.
type Key [16]byte

// keyOf hashes parts, each ended by a zero byte (ids hold no control
// character: the separator is unambiguous), in a buffer on the stack for
// the usual lengths.
func keyOf(parts ...string) Key {
	var buf [512]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(append(b, p...), 0)
	}
	sum := sha256.Sum256(b)
	return Key(sum[:16])
}

// EntityKey is the key of entity id of app in table t.
func EntityKey(t Table, app, id string) Key { return keyOf(t.String(), app, id) }

// EventKey is the identity of an event, for the memory of those counted:
// its application, type, event time and the ids of what it names.
func EventKey(app, typ string, ms int64, connection, channel, client string) Key {
	var digits [20]byte
	return keyOf(app, typ, string(strconv.AppendInt(digits[:0], ms, 10)), connection, channel, client)
}

// Fact is one event as the State takes it.
type Fact struct {
	App string
	Op  Op
	// Entity is the key of the connection, channel or client the Op
	// changes (unused for OpNone).
	Entity Key
	// Seen is the event's identity.
	Seen Key
	// Ms is the event time, in milliseconds since the epoch.
	Ms int64
}

// Phase says how far a connection had come when it ended.
type Phase uint8

// Phases, as exported in the phase label.
const (
	// PhaseSetup: it had started and not connected.
	PhaseSetup Phase = iota
	// PhaseEstablished: it had connected.
	PhaseEstablished
	// PhaseUnknown: it was not held (its start was not seen, or it was
	// dropped).
	PhaseUnknown
	NumPhases
)

var phaseNames = [NumPhases]string{"setup", "established", "unknown"}

// String returns the phase as exported in the phase label.
func (p Phase) String() string { return phaseNames[p] }

// Effect is what one fact did.
type Effect struct {
	// Duplicate: the event was counted already; nothing changed.
	Duplicate bool
	// Unremembered: applied, but the memory of events was full for its
	// minute: a replay of it would count again.
	Unremembered bool
	// SpanMs is the time the event closed, in milliseconds: the setup time
	// (OpConnectionUp), the time a connection was up (its end), a
	// channel's duration (OpChannelOff); -1 for none.
	SpanMs int64
	// Peak is the most clients the channel had at once (OpChannelOff, with
	// SpanMs).
	Peak int64
	// Phase is how far the connection had come (its end).
	Phase Phase
}

// Levels are one application's entries held now.
type Levels struct {
	Channels, Clients, Connections int64
	// LargestChannel is the most clients in one of its channels now.
	LargestChannel int64
}

// Sizes are the entries held per table, and the events remembered.
type Sizes struct {
	Entries    [NumTables]int64
	Remembered int64
}

// DropReason says why an entry was dropped before its end came.
type DropReason uint8

// Reasons, as exported in the reason label.
const (
	// DropExpired: its deadline passed.
	DropExpired DropReason = iota
	// DropEvicted: its table was full, and a new entry took the place of
	// the one with the earliest deadline.
	DropEvicted
	NumDropReasons
)

var dropReasonNames = [NumDropReasons]string{"expired", "evicted"}

// String returns the reason as exported in the reason label.
func (r DropReason) String() string { return dropReasonNames[r] }

// Drops counts entries dropped, per table and reason.
type Drops [NumTables][NumDropReasons]uint64

// Add adds o.
func (d *Drops) Add(o Drops) {
	for t := range d {
		for r := range d[t] {
			d[t][r] += o[t][r]
		}
	}
}

// Limits bound a State.
type Limits struct {
	// MaxEntries bounds each table (0: no bound).
	MaxEntries [NumTables]int
	// PendingTTL is how long a connection is held before it connects;
	// OpenTTL how long a connected connection, a channel or a client is.
	PendingTTL, OpenTTL time.Duration
	// MaxEventAge is how old (by event time) an event may be; events are
	// remembered that long. MaxFutureSkew is how far ahead of the clock.
	MaxEventAge, MaxFutureSkew time.Duration
	// MaxRemembered bounds the events remembered (0: no bound).
	MaxRemembered int
}

// Defaults of the limits the operator does not set.
const (
	DefaultMaxPending    = 100000
	DefaultMaxChannels   = 100000
	DefaultMaxClients    = 100000
	DefaultPendingTTL    = 5 * time.Minute
	DefaultOpenTTL       = 12 * time.Hour
	DefaultMaxEventAge   = time.Hour
	DefaultMaxRemembered = 1000000
	DefaultMaxFutureSkew = 5 * time.Minute
	rememberBucket       = time.Minute
	rememberBucketMs     = int64(rememberBucket / time.Millisecond)
)

// WithDefaults fills the limits left at zero.
func (l Limits) WithDefaults() Limits { return l.withDefaults() }

// withDefaults fills the limits left at zero.
func (l Limits) withDefaults() Limits {
	if l.PendingTTL <= 0 {
		l.PendingTTL = DefaultPendingTTL
	}
	if l.OpenTTL <= 0 {
		l.OpenTTL = DefaultOpenTTL
	}
	if l.MaxEventAge <= 0 {
		l.MaxEventAge = DefaultMaxEventAge
	}
	if l.MaxFutureSkew <= 0 {
		l.MaxFutureSkew = DefaultMaxFutureSkew
	}
	return l
}

// RememberBuckets is how many minutes of event time the memory of events
// spans: those an accepted event may fall in.
func (l Limits) RememberBuckets() int64 {
	l = l.withDefaults()
	return int64((l.MaxEventAge+l.MaxFutureSkew+rememberBucket-1)/rememberBucket) + 1
}

// PerBucket is the most events remembered per minute of event time
// (0: no bound).
func (l Limits) PerBucket() int64 {
	if l.MaxRemembered <= 0 {
		return 0
	}
	n := l.RememberBuckets()
	return max(1, (int64(l.MaxRemembered)+n-1)/n)
}

// BucketOf is the minute of event time ms falls in.
func BucketOf(ms int64) int64 { return floorDiv(ms, rememberBucketMs) }

// BucketExpiresMs is when the memory of bucket b may go: once every event
// time in it is older than MaxEventAge.
func (l Limits) BucketExpiresMs(b int64) int64 {
	return (b+1)*rememberBucketMs + l.withDefaults().MaxEventAge.Milliseconds()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// TTL returns the time to live of an entry of table t: a connection not
// yet connected is pending.
func (l Limits) TTL(t Table, connected bool) time.Duration {
	l = l.withDefaults()
	if t == TableConnections && !connected {
		return l.PendingTTL
	}
	return l.OpenTTL
}
