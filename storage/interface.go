// Package storage keeps the exporter's fleet across restarts, and shares it
// between replicas.
//
// A Store holds opaque records under string keys (storage/embedded: a Pebble
// database on local disk); a Log is an ordered log of opaque entries shared
// by replicas (Redis, in this package). Neither knows what a server or an
// event is, so a new backend can be added without touching the fleet's rules
// or the HTTP layer.
package storage

import (
	"context"
	"errors"
)

// ErrNoSpace is returned by a Store's Commit when the file system holding
// the store is (nearly) full: nothing was written, and commits succeed again
// once space is freed. The webhook answers it 503, saying the disk is full.
var ErrNoSpace = errors.New("no space left for the store")

// Store persists records. Implementations must be safe for use by one writer
// and any number of concurrent readers of Load.
type Store interface {
	// Load calls fn once for every stored record, in no particular order;
	// value is valid only until fn returns. It is called once at start,
	// before the exporter reports ready.
	Load(ctx context.Context, fn func(key string, value []byte) error) error
	// Commit applies one batch atomically and durably: when it returns nil,
	// every put and delete of the batch survives a crash of the process;
	// when it returns an error, none of them took effect. The fleet groups
	// the changes of many concurrent webhooks into one batch, so one Commit
	// (one fsync) acknowledges them all.
	Commit(ctx context.Context, b *Batch) error
	// Close releases the store; no call may follow it.
	Close() error
}

// Batch is a set of changes committed together.
type Batch struct {
	Puts    map[string][]byte
	Deletes []string
}

// Len is the number of changes in the batch.
func (b *Batch) Len() int { return len(b.Puts) + len(b.Deletes) }
