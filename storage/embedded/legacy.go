package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
// already, and replaying it in order then gives the same records.) Every
// record is read as Options.CheckRecord reads it before anything is
// written: the earlier layout had no checksums, and a record it garbled
// refuses the conversion, the earlier files left as they are. The database
// is built aside and renamed into place in one step; the earlier files are
// renamed to *.migrated once the new store is checked.
func (p *Pebble) migrate() error {
	records, err := readLegacy(p.dir)
	if err != nil {
		return err
	}
	if err := p.checkLegacy(records); err != nil {
		return err
	}
	tmp := p.path(migratingDir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("converting the store: %w", err)
	}
	err = guarded(func() error {
		db, err := pebble.Open(tmp, &pebble.Options{ErrorIfExists: true, Logger: p.log, FormatMajorVersion: pebble.FormatNewest})
		if err != nil {
			return err
		}
		b := db.NewBatch()
		for k, r := range records {
			_ = b.Set(recordKey(k), r.value, nil)
		}
		return errors.Join(b.Commit(pebble.Sync), b.Close(), writeIdentity(db, newIdentity()), db.Flush(), db.Close())
	})
	if err == nil {
		err = os.Rename(tmp, p.path(engineDir))
	}
	if err == nil {
		err = syncDir(p.dir)
	}
	if err != nil {
		return fmt.Errorf("converting the store: %w", flat(err))
	}
	p.opts.Logger.Info("Converted the store of the earlier layout", "records", len(records))
	return nil
}

// checkLegacy reads every record to convert as Options.CheckRecord does,
// and names the first that cannot be read, with the file it came from.
func (p *Pebble) checkLegacy(records map[string]legacyRecord) error {
	if p.opts.CheckRecord == nil {
		return nil
	}
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := records[k]
		if err := p.opts.CheckRecord(k, r.value); err != nil {
			return &DamagedError{File: r.file, Problem: fmt.Sprintf(
				"record %q%s cannot be read (%v): not converting the store; its files are left as they are", k, r.where, err)}
		}
	}
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

// legacyRecord is a record of an earlier store, with where it was read.
type legacyRecord struct {
	value []byte
	file  string // the file holding it
	where string // more precisely: which log entry, or ""
}

// readLegacy reads the net records of an earlier store, read-only, every
// batch decoded.
func readLegacy(dir string) (map[string]legacyRecord, error) {
	state := map[string]legacyRecord{}
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
			state[string(k)] = legacyRecord{value: append([]byte(nil), v...), file: recordsPath}
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
				state[key] = legacyRecord{value: value, file: logPath, where: fmt.Sprintf(" (log entry %x)", k)}
			}
			for _, key := range batch.Deletes {
				delete(state, key)
			}
			return nil
		})
	})
	return state, err
}

// readBolt runs fn on a bbolt file opened read-only, turning what the
// file's content causes into a DamagedError; a file the system will not
// let it read is reported with the system's reason. (bbolt's own Check is
// not used: it reads the file in a goroutine of its own, where a truncated
// file's memory fault could not be recovered.)
func readBolt(path string, fn func(*bolt.Tx) error) error {
	err := guarded(func() error {
		db, err := bolt.Open(path, 0o640, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(fn)
	})
	var pe *panicError
	switch {
	case err == nil || IsDamaged(err):
		return err
	case errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("%s is locked by another process (is an earlier exporter running on it?)", path)
	case notDamage(err):
		return unreadableError(err)
	case errors.As(err, &pe):
		return &DamagedError{File: path, Problem: "reading it failed: " + firstLine(pe.Error())}
	}
	return &DamagedError{File: path, Problem: firstLine(err.Error())}
}

// lockTimeout is how long opening an earlier store's file waits for
// another process to release it.
const lockTimeout = time.Second
