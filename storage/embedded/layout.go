package embedded

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A store directory (--storage.path) holds:
const (
	// markerName is a small file written once the database exists. A
	// database cannot notice that it was deleted whole; the marker can, so
	// that an emptied directory is refused rather than taken for a new
	// store.
	markerName = "store.json"
	// engineDir holds the Pebble database.
	engineDir = "pebble"
	// lockName is locked while an exporter uses the directory.
	lockName = "LOCK"
	// migratingDir is where a store of the earlier layout is converted
	// before it becomes engineDir in one rename.
	migratingDir = "pebble.migrating"
)

// markerFormat names what a marker describes.
const markerFormat = "liveswitch_exporter store v2"

// marker is the content of markerName.
type marker struct {
	Format  string    `json:"format"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// StartedEmpty is set on a store created empty in place of a damaged
	// one, so that every later start can say so.
	StartedEmpty *EmptyStart `json:"started_empty,omitempty"`
}

// EmptyStart says why a store began empty: --storage.on-damage=start-empty
// moved a damaged store aside.
type EmptyStart struct {
	// At is when the damaged store was moved.
	At time.Time `json:"at"`
	// MovedTo is the directory holding the damaged store's files.
	MovedTo string `json:"moved_to"`
	// Problem is the damage found, as the refusal would have said it.
	Problem string `json:"problem"`
}

// layout is what a store directory holds before it is opened.
type layout struct {
	marker *marker // nil: none
	engine bool    // engineDir holds files
	legacy bool    // files of the earlier layout are present
}

// inspect reads what dir holds, without changing anything.
func inspect(dir string) (layout, error) {
	var l layout
	m, err := readMarker(filepath.Join(dir, markerName))
	if err != nil {
		return l, err
	}
	l.marker = m
	entries, err := os.ReadDir(filepath.Join(dir, engineDir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return l, fmt.Errorf("reading the store directory: %w", err)
	default:
		l.engine = len(entries) > 0
	}
	l.legacy = exists(filepath.Join(dir, legacyRecords)) || exists(filepath.Join(dir, legacyLog))
	return l, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func readMarker(path string) (*marker, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil || m.Format != markerFormat || m.ID == "" {
		return nil, &DamagedError{File: path, Problem: "not a store marker (truncated or overwritten)"}
	}
	return &m, nil
}

// writeMarker replaces the marker in one rename, synced, so that it is
// whole or absent after a crash.
func writeMarker(dir string, m marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, markerName, append(data, '\n'))
}

func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// dirLock is the exclusive lock of a store directory.
type dirLock struct{ closer interface{ Close() error } }

// lockDir locks dir, so that two exporters never use one store. Only a lock
// another process holds is reported as such; a lock file that cannot be
// opened is reported with the system's reason.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockName)
	c, err := vfs.Default.Lock(path)
	var pe *fs.PathError
	switch {
	case err == nil:
		return &dirLock{closer: c}, nil
	case errors.As(err, &pe):
		return nil, unreadableError(err)
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EWOULDBLOCK):
		return nil, fmt.Errorf("storage directory %s is locked by another process (is another exporter running on it?): %s: %w", dir, path, err)
	case strings.Contains(err.Error(), "held by current process"):
		return nil, fmt.Errorf("storage directory %s is already open in this process", dir)
	}
	return nil, fmt.Errorf("locking the store: %s: %w", path, err)
}

func (l *dirLock) release() {
	if l.closer != nil {
		_ = l.closer.Close()
		l.closer = nil
	}
}

// moveAside moves a damaged store's files into a new directory
// damaged-<time> inside dir, and returns its path.
func moveAside(dir string, now time.Time) (string, error) {
	aside := filepath.Join(dir, "damaged-"+now.UTC().Format("20060102T150405.000Z"))
	if err := os.Mkdir(aside, 0o750); err != nil {
		return "", fmt.Errorf("moving the damaged store aside: %w", err)
	}
	for _, name := range []string{markerName, engineDir, migratingDir, legacyRecords, legacyLog} {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("moving the damaged store aside: %w", err)
		}
	}
	return aside, syncDir(dir)
}

// Keys of the database: records under their own key, the store's own facts
// under metaPrefix, which no record key starts with (record keys start with
// a server's origin).
const metaPrefix = "\x00"

var identityKey = []byte(metaPrefix + "identity")

func recordKey(k string) []byte { return []byte(k) }

// identity is who a database is, so that a marker and a database that do
// not belong together are noticed.
type identity struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

func newIdentity() identity {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return identity{ID: hex.EncodeToString(b), Created: time.Now().UTC()}
}

func writeIdentity(db *pebble.DB, id identity) error {
	data, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return db.Set(identityKey, data, pebble.Sync)
}

// errNoIdentity is a database without its identity record.
var errNoIdentity = errors.New("the database does not say which store it is (not created by this exporter?)")

// errBadIdentity is an identity record that cannot be read.
var errBadIdentity = errors.New("the database's identity record is unreadable")

func readIdentity(db *pebble.DB) (string, error) {
	data, closer, err := db.Get(identityKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", errNoIdentity
	}
	if err != nil {
		return "", err
	}
	defer closer.Close()
	var id identity
	if err := json.Unmarshal(data, &id); err != nil || id.ID == "" {
		return "", errBadIdentity
	}
	return id.ID, nil
}

// forEach calls fn for every record of db, in key order.
func forEach(ctx context.Context, db *pebble.DB, fn func(key string, value []byte) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{0x01}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		value, err := it.ValueAndErr()
		if err == nil {
			err = fn(string(it.Key()), value)
		}
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return errors.Join(it.Error(), it.Close())
}
