package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkAccess makes sure, before anything is locked, read or written, that
// this process may use every part of the store in dir: enter and write its
// directories (the engine creates, renames and deletes files there), read
// its files, and write its lock. Without it, the engine fails deep inside
// (a panic while creating its manifest, or a flush retried without end); a
// read-only file system is found here too. The error names the first part
// that cannot be used, the system's reason and the user the exporter runs
// as.
func checkAccess(dir string) error {
	engine := filepath.Join(dir, engineDir)
	parts := []struct {
		path string
		mode uint32
	}{
		{dir, canRead | canWrite | canEnter},
		{filepath.Join(dir, lockName), canRead | canWrite},
		{filepath.Join(dir, markerName), canRead},
		{filepath.Join(dir, legacyRecords), canRead},
		{filepath.Join(dir, legacyLog), canRead},
		{engine, canRead | canWrite | canEnter},
	}
	for _, p := range parts {
		if err := accessIfPresent(p.path, p.mode); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(engine)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return accessError(err)
	}
	for _, e := range entries {
		mode := uint32(canRead)
		if e.IsDir() {
			mode |= canEnter
		}
		if err := accessIfPresent(filepath.Join(engine, e.Name()), mode); err != nil {
			return err
		}
	}
	return nil
}

// accessIfPresent checks path, unless it does not exist (yet).
func accessIfPresent(path string, mode uint32) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := access(path, mode); err != nil {
		return accessError(err)
	}
	return nil
}

// accessError names the part of the store, the system's reason and who
// the exporter runs as.
func accessError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot use the store: %s: %s (the exporter runs as %s): %w", pe.Path, pe.Op, processUser(), pe.Err)
	}
	return fmt.Errorf("cannot use the store: %w", err)
}

// accessOp says what access was missing.
func accessOp(mode uint32) string {
	switch {
	case mode&canWrite != 0 && mode&canEnter != 0:
		return "no right to read and write in this directory"
	case mode&canWrite != 0:
		return "no right to read and write it"
	case mode&canEnter != 0:
		return "no right to list and enter it"
	}
	return "no right to read it"
}
