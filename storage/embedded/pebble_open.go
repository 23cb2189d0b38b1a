package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// Open opens the store in directory dir, creating it when dir holds none,
// and converting a store of the exporter's earlier layout.
//
// It first makes sure that this process may use every part of the store
// (a directory it cannot write, a read-only file system, a file it cannot
// read are refused with the system's reason). Then, before anything is
// written, every file is read and checked, and every record read as
// Options.CheckRecord reads it: a store that is damaged, truncated, missing
// a part or holding an unreadable record is refused with a *DamagedError
// (or moved aside, see Options.StartEmptyOnDamage), never silently opened
// smaller. Reading takes as long as it takes, saying every 10 s that it
// goes on: slowness is not damage.
func Open(dir string, opts Options) (*Pebble, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	if err := checkAccess(dir); err != nil {
		return nil, err
	}
	lck, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	p := &Pebble{dir: dir, opts: opts, dirLck: lck, errLog: ratelog.New(10*time.Second, nil),
		flushFailed: make(chan error, 1), openFailed: make(chan error, 1),
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

// StartedEmpty says why the fleet of this store began empty, when it began
// so in place of a damaged store (Options.StartEmptyOnDamage) and this
// start is the first to serve it: this start moved the damaged store
// aside, or nothing was stored since an earlier start did. It is nil
// otherwise.
func (p *Pebble) StartedEmpty() *EmptyStart {
	if !p.startedEmpty {
		return nil
	}
	return p.emptyStart
}

// open prepares the directory, checks the store read-only, then opens it
// for writing.
func (p *Pebble) open() error {
	l, err := inspect(p.dir)
	if err == nil {
		err = p.prepare(l)
	}
	if IsDamaged(err) && p.opts.StartEmptyOnDamage {
		err = p.startEmpty(err)
	}
	if err != nil {
		return err
	}
	if err := p.checkSpace(); err != nil {
		return fmt.Errorf("not opening the store for writing: %w; free space on its file system and start again", err)
	}
	db, err := p.openForWriting()
	if err != nil {
		return fmt.Errorf("opening the store for writing: %w", err)
	}
	p.db = db
	p.sayEmptyStart()
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
	if l.marker != nil {
		if l.marker.StartedEmpty != nil && p.emptyStart == nil {
			p.emptyStart = l.marker.StartedEmpty
		}
		return nil
	}
	return writeMarker(p.dir, marker{Format: markerFormat, ID: id, Created: time.Now().UTC(), StartedEmpty: p.emptyStart})
}

// startEmpty moves the damaged store aside and starts a new, empty one
// whose marker remembers why.
func (p *Pebble) startEmpty(damage error) error {
	now := time.Now().UTC()
	aside, err := moveAside(p.dir, now)
	if err != nil {
		return errors.Join(damage, err)
	}
	if abs, err := filepath.Abs(aside); err == nil {
		aside = abs // later starts may run elsewhere
	}
	p.emptyStart = &EmptyStart{At: now, MovedTo: aside, Problem: damage.Error()}
	p.startedEmpty = true
	p.opts.Logger.Warn("STORE DAMAGED: moved aside; starting with an EMPTY fleet, as --storage.on-damage=start-empty asks",
		"problem", damage.Error(), "moved_to", aside)
	return p.prepare(layout{})
}

// sayEmptyStart warns, at every start, that the store began empty in place
// of a damaged one, for as long as the damaged store is kept: the fleet
// shown lacks everything that store held.
func (p *Pebble) sayEmptyStart() {
	e := p.emptyStart
	if e == nil {
		return
	}
	if p.records.Load() == 0 {
		p.startedEmpty = true // nothing was stored since the start that moved it
	}
	if !p.startedEmpty && !exists(e.MovedTo) {
		return
	}
	p.opts.Logger.Warn("STARTED FROM AN EMPTY STORE: the fleet shown begins when a damaged store was moved aside; "+
		"restore it from a backup, or delete its directory once it is dealt with (this warning then stops)",
		"moved_at", e.At.Format(time.RFC3339), "moved_to", e.MovedTo, "problem", e.Problem,
		"records_since", p.records.Load())
}

// check opens the database read-only and reads every record, so that the
// engine verifies every checksum, and CheckRecord every record, before
// anything can write. It returns the store's identity.
func (p *Pebble) check() (string, error) {
	engine := p.path(engineDir)
	p.records.Store(0)
	p.opts.Logger.Info("Checking the store: reading every record before anything is written", "path", engine)
	start := time.Now()
	stop := p.progress("checking the store")
	defer stop()
	var id string
	err := guarded(func() error {
		db, err := p.openEngine(true, false)
		if err != nil {
			return err
		}
		defer closeEngine(db)
		if id, err = readIdentity(db); err != nil {
			if errors.Is(err, errBadIdentity) {
				return &DamagedError{File: recordFile(db, engine, string(identityKey)), Problem: err.Error()}
			}
			return err
		}
		return forEach(context.Background(), db, func(key string, value []byte) error {
			p.records.Add(1)
			if p.opts.CheckRecord == nil {
				return nil
			}
			if err := p.opts.CheckRecord(key, value); err != nil {
				return &DamagedError{File: recordFile(db, engine, key), Problem: fmt.Sprintf(
					"record %q passes the engine's checksums but cannot be read: %v", key, err)}
			}
			return nil
		})
	})
	if err != nil {
		return "", damagedEngine(engine, err)
	}
	p.opts.Logger.Info("Store checked", "records", p.records.Load(), "took", time.Since(start).Round(time.Millisecond))
	return id, nil
}

// progressEvery spaces the lines saying that a long check goes on.
var progressEvery = 10 * time.Second

// progress says, every progressEvery until stop is called, that what goes
// on, and how far it got: a slow disk or a paused process makes the check
// slow, never damaged.
func (p *Pebble) progress(what string) (stop func()) {
	start := time.Now()
	t := time.NewTicker(progressEvery)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.opts.Logger.Info("Still "+what+" (slow, which is not damage: it goes on)",
					"records_read", p.records.Load(), "elapsed", time.Since(start).Round(time.Second).String())
			}
		}
	}()
	return func() {
		t.Stop()
		close(done)
	}
}

// closeEngine closes a database opened to be read, keeping a panic of Close
// (Pebble raises one when a panic left an iterator open) from hiding the
// panic that is unwinding.
func closeEngine(db *pebble.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// damagedEngine classifies an error of reading the engine's files: damage,
// naming the file it is about, unless the system refused or failed to read
// them (see notDamage), which is reported as it is.
func damagedEngine(engine string, err error) error {
	switch {
	case err == nil || IsDamaged(err):
		return err
	case notDamage(err):
		return unreadableError(err)
	case errors.Is(err, pebble.ErrDBDoesNotExist):
		return &DamagedError{File: filepath.Join(engine, "marker.manifest.*"),
			Problem: "missing: the directory holds files, but no marker names the database's current manifest"}
	case errors.Is(err, pebble.ErrDBNotPristine):
		return &DamagedError{File: filepath.Join(engine, "marker.format-version.*"),
			Problem: "missing: without it the engine takes the database for one whose creation did not finish"}
	case errors.Is(err, errNoIdentity):
		file := newestFile(engine, "MANIFEST-*")
		if file == "" {
			file = engine
		}
		return &DamagedError{File: file, Problem: "the database it describes lacks the store's identity record " +
			"(this manifest, or a file it lists, lost it; or the database is not this exporter's)"}
	}
	msg := firstLine(err.Error())
	if strings.Contains(msg, "replaying WAL") {
		if d, ok := walDamage(engine); ok {
			return d
		}
	}
	var pe *panicError
	if errors.As(err, &pe) {
		msg = "reading it failed: " + msg
	}
	file := damagedFile(engine, msg)
	if file == engine {
		file = optionsDamage(engine, file)
	}
	return &DamagedError{File: file, Problem: plainEngineWords(msg)}
}

// optionsDamage returns the engine's newest OPTIONS file when the engine
// refuses it (its errors about it name no file), else otherwise.
func optionsDamage(engine, otherwise string) string {
	path := newestFile(engine, "OPTIONS-*")
	if path == "" {
		return otherwise
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return otherwise
	}
	opts := engineOptions()
	opts.EnsureDefaults()
	if opts.CheckCompatibility(engine, string(data)) != nil {
		return path
	}
	return otherwise
}

// blockRE is how the engine names a block: offset/length.
var blockRE = regexp.MustCompile(`block (\d+)/(\d+)`)

// plainEngineWords says the engine's "block 223/520" as the offset it is.
func plainEngineWords(msg string) string {
	return blockRE.ReplaceAllString(msg, "block at offset $1 ($2 bytes)")
}

// recordFile names the file of the engine that holds key: the newest
// sorted file whose keys span it, or else the newest write-ahead log.
func recordFile(db *pebble.DB, engine, key string) string {
	k := recordKey(key)
	if levels, err := db.SSTables(); err == nil {
		var best *pebble.SSTableInfo
		for _, level := range levels {
			for i := range level {
				t := &level[i]
				if bytes.Compare(t.Smallest.UserKey, k) <= 0 && bytes.Compare(k, t.Largest.UserKey) <= 0 &&
					(best == nil || t.LargestSeqNum > best.LargestSeqNum) {
					best = t
				}
			}
		}
		if best != nil {
			return filepath.Join(engine, fmt.Sprintf("%06d.sst", best.BackingSSTNum))
		}
	}
	logs, _ := filepath.Glob(filepath.Join(engine, "*.log"))
	sort.Strings(logs)
	if len(logs) > 0 {
		return logs[len(logs)-1]
	}
	return engine
}

// create makes a new, empty database that knows its identity.
func (p *Pebble) create() error {
	err := guarded(func() error {
		db, err := p.openEngine(false, true)
		if err != nil {
			return err
		}
		err = writeIdentity(db, newIdentity())
		return errors.Join(err, db.Close())
	})
	if err != nil {
		return fmt.Errorf("creating the store: %w", flat(err))
	}
	return nil
}

// openForWriting opens the checked store for writing. Opening, the engine
// replays its write-ahead log and may write files; one it cannot write
// (its directory turned read-only meanwhile) it would retry without end,
// so the first error it reports in the background ends the open. The
// engine is then left as it is: the caller is expected to exit.
func (p *Pebble) openForWriting() (*pebble.DB, error) {
	type opened struct {
		db  *pebble.DB
		err error
	}
	done := make(chan opened, 1)
	go func() {
		var db *pebble.DB
		err := guarded(func() (err error) {
			db, err = p.openEngine(false, false)
			return err
		})
		done <- opened{db, err}
	}()
	select {
	case o := <-done:
		if o.err != nil && notDamage(o.err) {
			return nil, unreadableError(o.err)
		}
		return o.db, flat(o.err)
	case err := <-p.openFailed:
		if notDamage(err) {
			return nil, unreadableError(err)
		}
		return nil, err
	}
}

// engineOptions are the options of the store's engine that its files
// must agree with.
func engineOptions() *pebble.Options {
	return &pebble.Options{
		FS:                 vfs.Default,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		CacheSize:          1 << 20, // records are read once, at start
	}
}

// openEngine opens the Pebble database of the store.
func (p *Pebble) openEngine(readOnly, create bool) (*pebble.DB, error) {
	opts := engineOptions()
	opts.ReadOnly, opts.ErrorIfExists, opts.ErrorIfNotExists = readOnly, create, !create
	opts.Logger = p.log
	opts.EventListener = &pebble.EventListener{
		BackgroundError: p.backgroundError,
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err != nil {
				select {
				case p.flushFailed <- flat(info.Err):
				default:
				}
			}
		},
	}
	db, err := pebble.Open(p.path(engineDir), opts)
	return db, flat(err)
}

// backgroundError reports an error of the engine's background work: it
// ends an open for writing (see openForWriting); while serving, the engine
// retries, and the log says so, rate-limited.
func (p *Pebble) backgroundError(err error) {
	if !p.log.serving.Load() {
		select {
		case p.openFailed <- flat(err):
		default:
		}
	}
	p.errLog.Log(p.opts.Logger, slog.LevelWarn, "The store's background work failed; it will be retried", "err", firstLine(err.Error()))
}
