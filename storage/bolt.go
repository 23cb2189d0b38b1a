package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File names inside the storage directory.
const (
	// FileName holds the compacted records.
	FileName = "liveswitch_exporter.db"
	// LogFileName holds the batches committed since the last compaction.
	LogFileName = "liveswitch_exporter.log.db"
)

var (
	recordsBucket = []byte("servers")
	metaBucket    = []byte("meta")
	appliedKey    = []byte("applied_seq")
	logBucket     = []byte("log")
)

// lockTimeout is how long Open waits for another process to release a file.
const lockTimeout = time.Second

// compactEvery is how many logged batches trigger a compaction.
const compactEvery = 512

// Bolt is the embedded, file-backed store: no service to run.
//
// A commit appends the whole batch as one value to a log (one bbolt
// transaction, fsynced), which costs the same whatever keys the batch
// touches; updating a B+tree of thousands of records in place would dirty a
// page per record. A background compaction folds the log into the records
// file, sorted and with repeated updates collapsed, then trims the log. Both
// files are locked exclusively, so that two exporters never share them.
type Bolt struct {
	records, log *bolt.DB
	logger       *slog.Logger

	closed  sync.Once
	mu      sync.Mutex // guards seq and pending
	seq     uint64     // last logged sequence number
	pending int        // batches logged since the last compaction started
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// OpenBolt opens (creating if needed) the store in directory dir. It fails
// when the directory cannot be created or written, when another process holds
// a file, and when a file is not a valid database: the exporter must never
// silently start with an empty fleet.
func OpenBolt(dir string, logger *slog.Logger) (*Bolt, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	records, err := openFile(filepath.Join(dir, FileName), recordsBucket, metaBucket)
	if err != nil {
		return nil, err
	}
	log, err := openFile(filepath.Join(dir, LogFileName), logBucket)
	if err != nil {
		records.Close()
		return nil, err
	}
	b := &Bolt{records: records, log: log, logger: logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	err = log.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(logBucket).Cursor().Last(); k != nil {
			b.seq = decodeSeq(k)
		}
		b.pending = tx.Bucket(logBucket).Stats().KeyN
		return nil
	})
	if err != nil {
		b.closeFiles()
		return nil, err
	}
	go b.compactor()
	return b, nil
}

func openFile(path string, buckets ...[]byte) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("storage file %s is locked by another process (is another exporter running on it?)", path)
	case err != nil:
		return nil, fmt.Errorf("opening storage file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising storage file %s: %w", path, err)
	}
	return db, nil
}

// Load implements Store: the compacted records, with the logged batches the
// compaction has not folded in yet applied over them in order.
func (b *Bolt) Load(ctx context.Context, fn func(key string, value []byte) error) error {
	applied, err := b.appliedSeq()
	if err != nil {
		return err
	}
	state := map[string][]byte{}
	err = b.records.View(func(tx *bolt.Tx) error {
		return tx.Bucket(recordsBucket).ForEach(func(k, v []byte) error {
			state[string(k)] = append([]byte(nil), v...)
			return ctx.Err()
		})
	})
	if err != nil {
		return err
	}
	changes := map[string][]byte{}
	if err := b.foldLog(applied, math.MaxUint64, changes); err != nil {
		return err
	}
	for k, v := range changes {
		if v == nil {
			delete(state, k)
		} else {
			state[k] = v
		}
	}
	for k, v := range state {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// appliedSeq is the last log sequence number the records file holds.
func (b *Bolt) appliedSeq() (uint64, error) {
	var applied uint64
	err := b.records.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(metaBucket).Get(appliedKey); v != nil {
			applied = decodeSeq(v)
		}
		return nil
	})
	return applied, err
}

// Commit implements Store: the batch is appended to the log in one bbolt
// transaction, fsynced before it returns.
func (b *Bolt) Commit(_ context.Context, batch *Batch) error {
	value := encodeBatch(batch)
	b.mu.Lock()
	seq := b.seq + 1
	b.mu.Unlock()
	err := b.log.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(logBucket).Put(encodeSeq(seq), value)
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.seq = seq
	b.pending++
	due := b.pending >= compactEvery
	b.mu.Unlock()
	if due {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close implements Store: it compacts what the log holds, then closes both
// files.
// Calling it again does nothing.
func (b *Bolt) Close() error {
	var err error
	b.closed.Do(func() {
		close(b.stop)
		<-b.done
		err = errors.Join(b.Compact(), b.closeFiles())
	})
	return err
}

func (b *Bolt) closeFiles() error {
	return errors.Join(b.log.Close(), b.records.Close())
}

func (b *Bolt) compactor() {
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			return
		case <-b.kick:
			if err := b.Compact(); err != nil {
				b.logger.Warn("Compacting the storage log failed; will retry", "err", err)
			}
		}
	}
}

// Compact folds every logged batch into the records file, then trims the
// log. Commits go on meanwhile: only the final trim takes the log's write
// lock, briefly. A crash at any point loses nothing: the records file says
// up to which sequence number it holds the log.
func (b *Bolt) Compact() error {
	applied, err := b.appliedSeq()
	if err != nil {
		return err
	}
	b.mu.Lock()
	upTo := b.seq
	b.pending = 0
	b.mu.Unlock()
	if upTo <= applied {
		return nil
	}
	changes := map[string][]byte{} // nil value: delete
	if err := b.foldLog(applied, upTo, changes); err != nil {
		return err
	}
	err = b.records.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(recordsBucket)
		// In key order, each page of the B+tree is written once.
		for _, k := range slices.Sorted(maps.Keys(changes)) {
			v := changes[k]
			var err error
			if v == nil {
				err = bk.Delete([]byte(k))
			} else {
				err = bk.Put([]byte(k), v)
			}
			if err != nil {
				return err
			}
		}
		return tx.Bucket(metaBucket).Put(appliedKey, encodeSeq(upTo))
	})
	if err != nil {
		return err
	}
	return b.log.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(logBucket)
		var done [][]byte
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && decodeSeq(k) <= upTo; k, _ = c.Next() {
			done = append(done, append([]byte(nil), k...))
		}
		for _, k := range done {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// foldLog collects the net effect of the log entries in (after, upTo].
func (b *Bolt) foldLog(after, upTo uint64, changes map[string][]byte) error {
	return b.log.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(logBucket).Cursor()
		for k, v := c.Seek(encodeSeq(after + 1)); k != nil && decodeSeq(k) <= upTo; k, v = c.Next() {
			batch, err := decodeBatch(v)
			if err != nil {
				return fmt.Errorf("storage log entry %d: %w", decodeSeq(k), err)
			}
			for key, value := range batch.Puts {
				changes[key] = value
			}
			for _, key := range batch.Deletes {
				changes[key] = nil
			}
		}
		return nil
	})
}
