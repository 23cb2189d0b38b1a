package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file inside the storage directory.
const FileName = "liveswitch_exporter.db"

var bucket = []byte("servers")

// lockTimeout is how long Open waits for another process to release the file.
const lockTimeout = time.Second

// Bolt is the embedded, file-backed store (bbolt): no service to run, one
// fsync per commit, and an exclusive lock so that two exporters never share
// one file.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the store in directory dir. It fails
// when the directory cannot be created or written, when another process holds
// the file, and when the file is not a valid database: the exporter must never
// silently start with an empty fleet.
func OpenBolt(dir string) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("storage file %s is locked by another process (is another exporter running on it?)", path)
	case err != nil:
		return nil, fmt.Errorf("opening storage file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising storage file %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Load implements Store.
func (b *Bolt) Load(ctx context.Context, fn func(key string, value []byte) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(string(k), v)
		})
	})
}

// Commit implements Store: one bbolt transaction, fsynced before it returns.
func (b *Bolt) Commit(_ context.Context, batch *Batch) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		for k, v := range batch.Puts {
			if err := bk.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range batch.Deletes {
			if err := bk.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }
