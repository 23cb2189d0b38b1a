package storage

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
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// ErrNoSpace is returned by Commit when the file system holding the store
// is (nearly) full: nothing was written, and commits succeed again once
// space is freed.
var ErrNoSpace = errors.New("no space left for the store")

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
	// ErrNoSpace; 0 means DefaultMinFreeBytes.
	MinFreeBytes uint64
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

	// mu guards the engine against Close: commits and flushes share it.
	mu     sync.RWMutex
	db     *pebble.DB
	closed bool
	// unflushed counts commits the engine holds in memory (and in its
	// write-ahead log) only; an idle store writes them to its sorted files.
	unflushed atomic.Int64
	idle      *time.Timer
}

// Open opens the store in directory dir, creating it when dir holds none,
// and converting a store of the exporter's earlier layout. Before anything
// is written, every file is read and checked; a store that is damaged,
// truncated, or missing a part is refused with a *DamagedError (or moved
// aside, see Options.StartEmptyOnDamage), never silently opened smaller.
func Open(dir string, opts Options) (*Pebble, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	lck, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	p := &Pebble{dir: dir, opts: opts, dirLck: lck, errLog: ratelog.New(10*time.Second, nil), flushFailed: make(chan error, 1),
		log: &pebbleLogger{logger: opts.Logger, onFatal: opts.OnFatal}}
	if err := p.open(); err != nil {
		lck.release()
		return nil, err
	}
	p.log.serving.Store(true)
	p.idle = time.AfterFunc(idleFlushAfter, p.flushIdle)
	p.idle.Stop()
	return p, nil
}

// open prepares the directory, checks the store read-only, then opens it
// for writing.
func (p *Pebble) open() error {
	l, err := inspect(p.dir)
	if err == nil {
		err = p.prepare(l)
	}
	if IsDamaged(err) && p.opts.StartEmptyOnDamage {
		aside, merr := moveAside(p.dir)
		if merr != nil {
			return errors.Join(err, merr)
		}
		p.opts.Logger.Warn("Store damaged: moved aside, starting with an empty fleet as --storage.on-damage=start-empty asks",
			"problem", err, "moved_to", aside)
		err = p.prepare(layout{})
	}
	if err != nil {
		return err
	}
	if err := p.checkSpace(); err != nil {
		return fmt.Errorf("not opening the store for writing: %w; free space on its file system and start again", err)
	}
	db, err := p.openEngine(false, false)
	if err != nil {
		return fmt.Errorf("opening the store for writing: %w", err)
	}
	p.db = db
	return nil
}

// prepare brings the directory to a checked store with its marker: it
// migrates or creates the database when needed, then checks it.
func (p *Pebble) prepare(l layout) error {
	engine := p.path(engineDir)
	switch {
	case l.marker != nil && !l.engine:
		return &DamagedError{File: engine, Problem: fmt.Sprintf("missing, yet %s says a store was created here on %s",
			markerName, l.marker.Created.Format(time.RFC3339))}
	case !l.engine && l.legacy:
		if err := p.migrate(); err != nil {
			return err
		}
	case !l.engine:
		if err := p.create(); err != nil {
			return err
		}
	}
	id, err := p.check()
	if err != nil {
		return err
	}
	if l.marker != nil && l.marker.ID != id {
		return &DamagedError{File: p.path(markerName), Problem: fmt.Sprintf(
			"names store %s, but %s holds store %s", l.marker.ID, engine, id)}
	}
	if err := p.finishLegacy(); err != nil {
		return err
	}
	if l.marker == nil {
		return writeMarker(p.dir, marker{Format: markerFormat, ID: id, Created: time.Now().UTC()})
	}
	return nil
}

// check opens the database read-only and reads every record, so that the
// engine verifies every checksum before anything can write. It returns the
// store's identity.
func (p *Pebble) check() (string, error) {
	engine := p.path(engineDir)
	var id string
	err := guarded(engine, func() error {
		db, err := p.openEngine(true, false)
		if err != nil {
			return damagedEngine(engine, err)
		}
		defer db.Close()
		id, err = readIdentity(db)
		if err != nil {
			return damagedEngine(engine, err)
		}
		return damagedEngine(engine, forEach(context.Background(), db, func(string, []byte) error { return nil }))
	})
	return id, err
}

// damagedEngine classifies an error of the engine's files as damage, except
// those that say nothing about the files (permissions, a lock held).
func damagedEngine(file string, err error) error {
	switch {
	case err == nil || IsDamaged(err) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EAGAIN):
		return err
	case errors.Is(err, pebble.ErrDBDoesNotExist):
		return &DamagedError{File: file, Problem: "holds files but no database (its manifest marker is missing)"}
	}
	return &DamagedError{File: file, Problem: err.Error()}
}

// create makes a new, empty database that knows its identity.
func (p *Pebble) create() error {
	db, err := p.openEngine(false, true)
	if err != nil {
		return fmt.Errorf("creating the store: %w", err)
	}
	err = writeIdentity(db, newIdentity())
	return errors.Join(err, db.Close())
}

// openEngine opens the Pebble database of the store.
func (p *Pebble) openEngine(readOnly, create bool) (*pebble.DB, error) {
	db, err := pebble.Open(p.path(engineDir), &pebble.Options{
		FS:                 vfs.Default,
		ReadOnly:           readOnly,
		ErrorIfExists:      create,
		ErrorIfNotExists:   !create,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		CacheSize:          1 << 20, // records are read once, at start
		Logger:             p.log,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				p.errLog.Log(p.opts.Logger, slog.LevelWarn, "The store's background work failed; it will be retried", "err", err.Error())
			},
			FlushEnd: func(info pebble.FlushInfo) {
				if info.Err != nil {
					select {
					case p.flushFailed <- flat(info.Err):
					default:
					}
				}
			},
		},
	})
	return db, flat(err)
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
func (p *Pebble) Commit(_ context.Context, b *Batch) error {
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
			return fmt.Errorf("%w: %w", ErrNoSpace, flat(err))
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
			ErrNoSpace, free>>20, p.opts.MinFreeBytes>>20)
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
