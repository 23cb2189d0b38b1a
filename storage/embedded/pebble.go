package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// DefaultMinFreeBytes is the free space below which commits are refused.
// The engine needs room to flush its memory table and compact its files; a
// write-ahead log it cannot write is fatal to it, so the exporter stops
// writing well before the disk is full, and answers 503 meanwhile.
const DefaultMinFreeBytes = 64 << 20

// memTableSize bounds what the engine holds in memory (and replays from its
// write-ahead log after a crash) before it writes a sorted file.
const memTableSize = 4 << 20

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// StartEmptyOnDamage moves a damaged store aside (into a directory
	// named damaged-<time> next to it) and starts a new, empty one, instead
	// of refusing to open it.
	StartEmptyOnDamage bool
	// OnFatal is called when the engine fails beyond repair while serving
	// (say, its write-ahead log cannot be written). It must end the
	// process; everything acknowledged is durable already. nil panics.
	OnFatal func(error)
	// MinFreeBytes is the free space below which Commit refuses with
	// storage.ErrNoSpace; 0 means DefaultMinFreeBytes.
	MinFreeBytes uint64
	// CheckRecord, when set, reads a record as its user will at Load. Open
	// calls it on every record (and, converting a store of the earlier
	// layout, on every record to convert), so that a record that passes
	// the engine's checksums but cannot be read is damage, found before
	// anything is written, rather than a Load that fails at every start.
	CheckRecord func(key string, value []byte) error
}

// Pebble is the embedded store: a Pebble database (an LSM tree with a
// checksummed write-ahead log and checksummed files) in a directory of its
// own, so there is no service to run.
//
// Each Commit is one atomic Pebble batch, synced to the write-ahead log
// before it returns: one fdatasync per commit group. Pebble does all the
// bookkeeping (which writes are durable, which files hold them, checksums);
// the exporter adds only what a database cannot know about itself: a marker
// file that notices when the whole database disappears, a check of every
// file before anything is written, and a refusal of damaged stores.
type Pebble struct {
	dir    string
	opts   Options
	log    *pebbleLogger
	dirLck *dirLock
	errLog *ratelog.Limiter
	// flushFailed carries the error of a failed flush to a caller waiting
	// on Flush, which the engine would otherwise retry without end.
	flushFailed chan error
	// openFailed carries the first error the engine reports in the
	// background while it is opened for writing (see openForWriting).
	openFailed chan error
	// records counts the records the check read.
	records atomic.Int64
	// emptyStart is set when this store began empty in place of a
	// damaged one; startedEmpty when this start is the one that shows it.
	emptyStart   *EmptyStart
	startedEmpty bool

	// mu guards the engine against Close: commits and flushes share it.
	mu     sync.RWMutex
	db     *pebble.DB
	closed bool
	// unflushed counts commits the engine holds in memory (and in its
	// write-ahead log) only; an idle store writes them to its sorted files.
	unflushed atomic.Int64
	idle      *time.Timer
}

func (p *Pebble) path(name string) string { return filepath.Join(p.dir, name) }

// Load implements Store.
func (p *Pebble) Load(ctx context.Context, fn func(key string, value []byte) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errStoreClosed
	}
	return forEach(ctx, p.db, fn)
}

var errStoreClosed = errors.New("store is closed")

// Commit implements Store: one atomic batch, synced before it returns.
// Commits may run concurrently; each is atomic on its own.
func (p *Pebble) Commit(_ context.Context, b *storage.Batch) error {
	if err := p.checkSpace(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errStoreClosed
	}
	batch := p.db.NewBatch()
	defer batch.Close()
	for k, v := range b.Puts {
		if err := batch.Set(recordKey(k), v, nil); err != nil {
			return err
		}
	}
	for _, k := range b.Deletes {
		if err := batch.Delete(recordKey(k), nil); err != nil {
			return err
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: %w", storage.ErrNoSpace, flat(err))
		}
		return flat(err)
	}
	p.unflushed.Add(1)
	p.idle.Reset(idleFlushAfter)
	return nil
}

// checkSpace refuses a commit when the file system of the store has less
// than the reserve free.
func (p *Pebble) checkSpace() error {
	if free, ok := freeBytes(p.dir); ok && free < p.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d MiB free on the file system of the store, %d MiB kept in reserve",
			storage.ErrNoSpace, free>>20, p.opts.MinFreeBytes>>20)
	}
	return nil
}

// idleFlushAfter is how long after its last commit the store writes what
// it holds in memory to its sorted files. Only an idle store does it, so it
// never competes with ingest; at rest the store is then checksummed files
// only, and a restart replays no log.
var idleFlushAfter = 2 * time.Second

// flushTimeout bounds a flush: on a failing disk the engine retries a
// flush forever, and shutting down must not hang on it.
const flushTimeout = 10 * time.Second

func (p *Pebble) flushIdle() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed || p.unflushed.Load() == 0 {
		return
	}
	if err := p.flush(); err != nil {
		p.opts.Logger.Warn("Writing the idle store's memory table to its files failed; its write-ahead log keeps every commit", "err", err)
		return
	}
	p.opts.Logger.Debug("Idle store flushed: its write-ahead log holds nothing more")
}

// flush writes the engine's memory table to its sorted files, unless the
// disk is nearly full (the write-ahead log keeps every commit anyway).
func (p *Pebble) flush() error {
	if err := p.checkSpace(); err != nil {
		p.opts.Logger.Warn("Not flushing the store: the disk is nearly full; its write-ahead log keeps every commit", "err", err)
		return nil
	}
	n := p.unflushed.Load()
	select {
	case <-p.flushFailed: // of an earlier flush
	default:
	}
	done := make(chan error, 1)
	go func() { done <- p.db.Flush() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("flushing the store: %w", flat(err))
		}
		p.unflushed.Add(-n)
		return nil
	case err := <-p.flushFailed:
		return fmt.Errorf("flushing the store: %w", err)
	case <-time.After(flushTimeout):
		return fmt.Errorf("flushing the store did not finish within %s", flushTimeout)
	}
}

// Close implements Store. When something was committed since the last
// flush, it first writes the engine's memory table to its sorted files, so
// that the store at rest is checksummed files only. A start that failed
// before any commit writes nothing here.
func (p *Pebble) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.idle.Stop()
	defer p.dirLck.release()
	if p.unflushed.Load() > 0 {
		if err := p.flush(); err != nil {
			// Leave the engine as it is: its write-ahead log holds every
			// commit, and closing could wait on the failed flush.
			return fmt.Errorf("%w (its write-ahead log keeps every commit)", err)
		}
	}
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("closing the store: %w", flat(err))
	}
	return nil
}
