package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Errors of a Log. Each means that nothing was appended.
var (
	// ErrGap is returned by Log.Read when the entries right after the given
	// position are gone: a snapshot trimmed them while the reader was away,
	// or the shared store lost data. The reader must start over from
	// LoadSnapshot, or rebuild the log when that does not help.
	ErrGap = errors.New("log entries after this position are gone")
	// ErrBroken is returned by Append while the log is not whole (its epoch,
	// snapshot or entries were lost): appending to it would build on a wrong
	// fleet. A replica rebuilds it (BeginRebuild).
	ErrBroken = errors.New("the shared log lost data and must be rebuilt")
	// ErrRebuilding is returned by Append while a replica rebuilds the log.
	ErrRebuilding = errors.New("the shared log is being rebuilt")
	// ErrDeadline is returned by Append when the store ran it after its
	// deadline (it was held up on the way, or the store was paused): the
	// sender was told it failed, so it must not be applied later.
	ErrDeadline = errors.New("the append reached the shared store after its deadline")
	// ErrNotReplicated is returned by Append when the entry was appended but
	// fewer replicas of the store than asked acknowledged it in time. The
	// entry stays in the log; the sender should retry (its retry is a
	// duplicate).
	ErrNotReplicated = errors.New("the append was not replicated in time")
	// ErrUncertain wraps a failure whose outcome is not known: the store
	// may have taken the entry before its answer was lost (the connection
	// broke, or the store stopped answering in time).
	ErrUncertain = errors.New("the shared store may have taken the append; its answer was lost")
	// ErrRefused wraps an answer in which the store refused the append (out
	// of memory, read-only, too few replicas, a script error): it did not
	// take it. The error says what the store answered.
	ErrRefused = errors.New("the shared store refused the append")
)

// Log is a shared, ordered log of opaque entries, plus a snapshot of what
// folding its first entries gave.
//
// Several exporters (replicas) append to one Log and every one of them folds
// all of it, in the same order, with the same rules: so whichever replica
// received an event, they all end with the same fleet, and the rules that
// depend on order (duplicates, late deliveries, flaps) are decided once, by
// the position of each event in the log.
//
// Each life of the log is an epoch: a snapshot and the entries that follow
// it. When the shared store loses part of that (a key deleted or evicted, a
// failover to a replica that lacked recent writes), the log refuses appends
// and one replica rebuilds it as a new epoch from the fleet it holds and
// what remains (BeginRebuild, Entries, FinishRebuild).
type Log interface {
	// Append adds data at the end of the log, unless the store runs it after
	// deadline (ErrDeadline). When it returns nil the entry is as durable as
	// the shared store makes it, and every reader will see it after the
	// entries appended before it.
	Append(ctx context.Context, data []byte, deadline time.Time) error
	// LoadSnapshot returns the latest snapshot; an empty Snapshot when none
	// was saved yet.
	LoadSnapshot(ctx context.Context) (Snapshot, error)
	// Read returns the entries that follow position after (empty: the
	// start), oldest first, waiting up to wait for at least one. It returns
	// ErrGap when the entry that follows after is no longer in the log.
	Read(ctx context.Context, after string, wait time.Duration) ([]Entry, error)
	// SaveSnapshot stores data as the state that folding the log through
	// position through gives, and trims the entries before it. It does
	// nothing when a snapshot at or past through exists already, or when
	// through belongs to another epoch.
	SaveSnapshot(ctx context.Context, through string, data []byte) error
	// Claim reports whether this caller may do duty (sweeping, saving a
	// snapshot) for the next ttl: one replica wins, the others skip it, so
	// shared work is not done once per replica.
	Claim(ctx context.Context, duty string, ttl time.Duration) (bool, error)
	// Probe reads, cheaply, whether the log is whole and where it ends, so
	// that a replica notices lost data without waiting for traffic, and
	// publishes what the caller has folded (self) for the other replicas,
	// whom it returns in State.Peers. It also repairs what would otherwise
	// stand for good: a rebuild lock with no expiry gets one, a key of
	// another type at the lock's name is dropped.
	Probe(ctx context.Context, self Presence) (State, error)
	// BeginRebuild takes the right to rebuild the log for ttl; while it is
	// held, appends fail with ErrRebuilding. It reports false when another
	// replica holds it (and gives that lock an expiry if it had none).
	BeginRebuild(ctx context.Context, ttl time.Duration) (bool, error)
	// CancelRebuild gives up the right to rebuild, when the log turned out
	// whole (another replica rebuilt it meanwhile).
	CancelRebuild(ctx context.Context) error
	// DiscardSnapshot sets aside the snapshot through position through,
	// which the caller could not read, so that every replica finds the
	// snapshot lost (LossSnapshot) and the log is rebuilt. It does nothing
	// when the snapshot was replaced meanwhile.
	DiscardSnapshot(ctx context.Context, through string) error
	// Entries returns every entry still in the log, of any epoch, oldest
	// first, for a rebuild to fold what it has not folded yet.
	Entries(ctx context.Context) ([]Entry, error)
	// FinishRebuild starts a new epoch whose snapshot is data, drops the
	// entries of the broken one, and returns the snapshot's position; from
	// is the position the rebuilder had folded, and the new epoch comes
	// after it (Ahead). It fails when the right to rebuild was lost
	// meanwhile.
	FinishRebuild(ctx context.Context, data []byte, from string) (string, error)
	// Memory says whether the store may evict the log's keys or is full,
	// which the replica reports as not ready.
	Memory(ctx context.Context) (Memory, error)
	// Name is how this replica is named in the store (its presence, the
	// locks it takes), for its log lines.
	Name() string
	// Explain returns err with what the store can add about why it is
	// unreachable (say, a Sentinel that knows no such master).
	Explain(ctx context.Context, err error) error
	// Close releases the connection; no call may follow it.
	Close() error
}

// Entry is one entry of a Log.
type Entry struct {
	// Position identifies the entry; positions are opaque to callers.
	Position string
	Data     []byte
}

// Snapshot is the saved fold of a log's first entries.
type Snapshot struct {
	// Through is the position of the last entry folded in (or of the start
	// of its epoch); empty when there is no snapshot.
	Through string
	Data    []byte
}

// Presence is what a replica publishes of itself through Probe, so that the
// replica that rebuilds a log is the one that folded the most, and so that
// replicas can check that they agree.
type Presence struct {
	// Position is the last entry the replica folded, or is folding.
	Position string
	// Checked is the last checkpoint the replica folded, and Digest the
	// digest of its fleet there: replicas at the same checkpoint must
	// have the same digest.
	Checked, Digest string
}

// Peer is another replica of the log, as it last published itself.
type Peer struct {
	// Name identifies the replica (its host name and a random suffix).
	Name string
	Presence
	// PublishedMs is when it published, by the store's clock (State.Now).
	PublishedMs int64
	// Covered reports whether what it folded is still in the log: its
	// position's entry is there, or the snapshot covers it. A rebuild
	// loses what a peer folded past the log only if that peer does not
	// take part in it.
	Covered bool
}

// State is what Probe saw of a log, from a reader's position.
type State struct {
	// Now is the store's clock, in Unix milliseconds.
	Now int64
	// Epoch names the log's current life; empty when the store holds none.
	Epoch string
	// Loss says what part of the log is missing (LossNone when it is
	// whole); Detail says it in words, for the log of the exporter.
	Loss   Loss
	Detail string
	// Current reports whether the reader's position is in the current
	// epoch. A whole log of another epoch was rebuilt by another replica.
	Current bool
	// Lost reports whether entries the reader folded are gone from a log
	// that is otherwise whole: its position is neither in the log nor
	// covered by the snapshot (a failover to a Redis replica that lacked
	// the latest writes).
	Lost bool
	// Present reports whether the reader's position is an entry of the log
	// (a gap after it is then entries lost, not entries trimmed).
	Present bool
	// Rebuilding is set while a replica rebuilds the log.
	Rebuilding bool
	// Peers are the other replicas that published themselves lately.
	Peers []Peer
	// Repaired says, in words, what the probe repaired (a lock with no
	// expiry, a key of another type where no data was).
	Repaired []string
	// WriteRefused is what the store answered when it refused the probe's
	// one write (the publication): it refuses appends alike. Empty when
	// it took it.
	WriteRefused string
}

// Loss names the part of a shared log that was lost, as exported in the
// cause label of liveswitch_exporter_storage_data_loss_total.
type Loss uint8

// The losses a replica can find.
const (
	LossNone Loss = iota
	// LossSnapshot: the snapshot is gone or belongs to another epoch.
	LossSnapshot
	// LossLog: entries are gone (the stream, or its latest entries).
	LossLog
	// LossEpoch: the key naming the log's epoch is gone.
	LossEpoch
	// LossAll: every key of the log is gone (flushed, evicted, or a
	// failover to an empty Redis).
	LossAll
	NumLosses
)

var lossNames = [NumLosses]string{"none", "snapshot", "log", "epoch", "all"}

func (l Loss) String() string {
	if l < NumLosses {
		return lossNames[l]
	}
	return "unknown"
}

// Covered reports whether the entry at pos is part of what a snapshot (or
// a reader) at through holds: same epoch, not after it.
func Covered(through, pos string) bool {
	te, tid := splitPosition(through)
	pe, pid := splitPosition(pos)
	return te != "" && te == pe && !idAfter(pid, tid)
}

// Ahead reports whether a replica at position a has folded more than one
// at b: a later entry of the same epoch, or any entry of a later epoch
// (each rebuild starts a new generation, named in its epoch). Any position
// is ahead of none ("").
func Ahead(a, b string) bool {
	ae, aid := splitPosition(a)
	be, bid := splitPosition(b)
	switch {
	case ae == "":
		return false
	case be == "":
		return true
	case ae != be:
		return generation(ae) > generation(be)
	}
	return idAfter(aid, bid)
}

// An epoch is named "<generation>.<random>": each rebuild makes the next
// generation of the one its rebuilder had folded, so that a replica that
// slept through a rebuild knows it is behind. Epochs of earlier versions
// (no generation) are generation 0.
func generation(epoch string) uint64 {
	g, _, ok := strings.Cut(epoch, ".")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(g, 10, 64)
	return n
}

// nextEpoch names a new epoch, a generation after the one of position from.
func nextEpoch(from string) string {
	e, _ := splitPosition(from)
	return strconv.FormatUint(generation(e)+1, 10) + "." + randomHex()
}

// Checkpoint reports whether the entry at pos, folded right after the one
// at prev, is a checkpoint: the first entry of a new stretch (every) of
// the time in the log's ids. Every replica folds the same entries one
// after the other, so every replica finds the same checkpoints, and
// compares there the digest of its fleet with the others'.
func Checkpoint(prev, pos string, every time.Duration) bool {
	pe, pid := splitPosition(prev)
	e, id := splitPosition(pos)
	if e != pe || pid == "" {
		return true
	}
	pms, _ := splitID(pid)
	ms, _ := splitID(id)
	n := uint64(max(every.Milliseconds(), 1))
	return pms/n != ms/n
}

// idAfter reports whether stream id a comes after b ("" is before all).
func idAfter(a, b string) bool {
	if a == "" || b == "" {
		return a != "" && b == ""
	}
	am, as := splitID(a)
	bm, bs := splitID(b)
	return am > bm || (am == bm && as > bs)
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
