package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"
)

// Files of the exporter's earlier store layout: records in one bbolt file,
// the batches committed since their last compaction in another.
const (
	legacyRecords = "liveswitch_exporter.db"
	legacyLog     = "liveswitch_exporter.log.db"
)

var (
	legacyRecordsBucket = []byte("servers")
	legacyLogBucket     = []byte("log")
)

// migrate converts a store of the earlier layout into a new database: the
// records, then every batch of the log over them, in the log's order. (The
// earlier layout could number new batches below the records' position after
// a clean stop, so its own "applied" position is not trusted: a batch still
// in the log is either newer than the records, or was folded into them
// already, and replaying it in order then gives the same records.) The
// database is built aside and renamed into place in one step; the earlier
// files are renamed to *.migrated once the new store is checked.
func (p *Pebble) migrate() error {
	records, err := readLegacy(p.dir)
	if err != nil {
		return err
	}
	tmp := p.path(migratingDir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("converting the store: %w", err)
	}
	db, err := pebble.Open(tmp, &pebble.Options{ErrorIfExists: true, Logger: p.log, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return fmt.Errorf("converting the store: %w", err)
	}
	b := db.NewBatch()
	for k, v := range records {
		_ = b.Set(recordKey(k), v, nil)
	}
	err = errors.Join(b.Commit(pebble.Sync), b.Close(), writeIdentity(db, newIdentity()), db.Flush(), db.Close())
	if err == nil {
		err = os.Rename(tmp, p.path(engineDir))
	}
	if err == nil {
		err = syncDir(p.dir)
	}
	if err != nil {
		return fmt.Errorf("converting the store: %w", err)
	}
	p.opts.Logger.Info("Converted the store of the earlier layout", "records", len(records))
	return nil
}

// finishLegacy renames the files of the earlier layout once the new store
// holds their records, keeping them for the operator to delete.
func (p *Pebble) finishLegacy() error {
	for _, name := range []string{legacyRecords, legacyLog} {
		err := os.Rename(p.path(name), p.path(name+".migrated"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("renaming the converted store's files: %w", err)
		}
	}
	return syncDir(p.dir)
}

// readLegacy reads the net records of an earlier store, read-only, every
// batch decoded.
func readLegacy(dir string) (map[string][]byte, error) {
	state := map[string][]byte{}
	recordsPath := filepath.Join(dir, legacyRecords)
	if !exists(recordsPath) {
		return nil, &DamagedError{File: recordsPath, Problem: "missing, yet " + legacyLog + " is present"}
	}
	err := readBolt(recordsPath, func(tx *bolt.Tx) error {
		bk := tx.Bucket(legacyRecordsBucket)
		if bk == nil {
			return errors.New("no records bucket")
		}
		return bk.ForEach(func(k, v []byte) error {
			state[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, legacyLog)
	if !exists(logPath) {
		return state, nil
	}
	err = readBolt(logPath, func(tx *bolt.Tx) error {
		bk := tx.Bucket(legacyLogBucket)
		if bk == nil {
			return errors.New("no log bucket")
		}
		return bk.ForEach(func(k, v []byte) error {
			batch, err := decodeBatch(v)
			if err != nil {
				return fmt.Errorf("log entry %x: %w", k, err)
			}
			for key, value := range batch.Puts {
				state[key] = value
			}
			for _, key := range batch.Deletes {
				delete(state, key)
			}
			return nil
		})
	})
	return state, err
}

// readBolt runs fn on a bbolt file opened read-only, turning any failure
// into a DamagedError. (bbolt's own Check is not used: it reads the file in
// a goroutine of its own, where a truncated file's memory fault could not
// be recovered.)
func readBolt(path string, fn func(*bolt.Tx) error) error {
	return guarded(path, func() error {
		db, err := bolt.Open(path, 0o640, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		if err != nil {
			return &DamagedError{File: path, Problem: err.Error()}
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if err := fn(tx); err != nil {
				return &DamagedError{File: path, Problem: err.Error()}
			}
			return nil
		})
	})
}

// lockTimeout is how long opening an earlier store's file waits for
// another process to release it.
const lockTimeout = time.Second
