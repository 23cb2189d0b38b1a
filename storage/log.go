package storage

import (
	"context"
	"errors"
	"time"
)

// ErrGap is returned by Log.Read when the entries right after the given
// position are gone: a snapshot trimmed them while the reader was away, or
// the shared store lost data. The reader must start over from LoadSnapshot.
var ErrGap = errors.New("log entries after this position are gone; reload the snapshot")

// Log is a shared, ordered log of opaque entries, plus a snapshot of what
// folding its first entries gave.
//
// Several exporters (replicas) append to one Log and every one of them folds
// all of it, in the same order, with the same rules: so whichever replica
// received an event, they all end with the same fleet, and the rules that
// depend on order (duplicates, late deliveries, flaps) are decided once, by
// the position of each event in the log.
type Log interface {
	// Append adds data at the end of the log. When it returns nil the entry
	// is as durable as the shared store makes it, and every reader will see
	// it after the entries appended before it.
	Append(ctx context.Context, data []byte) error
	// LoadSnapshot returns the latest snapshot; an empty Snapshot when none
	// was saved yet.
	LoadSnapshot(ctx context.Context) (Snapshot, error)
	// Read returns the entries that follow position after (empty: the
	// start), oldest first, waiting up to wait for at least one. It returns
	// ErrGap when the entry that follows after is no longer in the log.
	Read(ctx context.Context, after string, wait time.Duration) ([]Entry, error)
	// SaveSnapshot stores data as the state that folding the log through
	// position through gives, and trims the entries before it. It does
	// nothing when a snapshot at or past through exists already.
	SaveSnapshot(ctx context.Context, through string, data []byte) error
	// Claim reports whether this caller may do duty (sweeping, saving a
	// snapshot) for the next ttl: one replica wins, the others skip it, so
	// shared work is not done once per replica.
	Claim(ctx context.Context, duty string, ttl time.Duration) (bool, error)
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
	// Through is the position of the last entry folded in; empty for none.
	Through string
	Data    []byte
}
