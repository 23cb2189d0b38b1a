package storage

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// DamagedError reports a store that cannot be trusted: a file that is
// missing, truncated, fails its checksums, or does not belong with the
// others. The exporter refuses to start on it (or, when the operator asked
// for it, moves it aside and starts empty): a smaller or older fleet shown
// as if it were the truth would page people wrongly.
type DamagedError struct {
	// File is the path of the damaged file or directory.
	File string
	// Problem says what is wrong, in a few words.
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store damaged: %s: %s", e.File, e.Problem)
}

// IsDamaged reports whether err says the store is damaged.
func IsDamaged(err error) bool {
	var d *DamagedError
	return errors.As(err, &d)
}

// guardTimeout bounds how long opening and checking a store may take. A
// damaged file can make a storage engine loop or allocate without end; the
// exporter must then say so and exit rather than hang.
var guardTimeout = 8 * time.Second

// guarded runs fn, which reads the store's files, turning what damaged files
// can cause into a DamagedError naming file: a panic, a memory fault (a file
// truncated under a mapping), or running past guardTimeout. On a timeout fn
// is left running: the caller is expected to exit.
func guarded(file string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				done <- &DamagedError{File: file, Problem: fmt.Sprintf("reading it failed: %v", r)}
			}
		}()
		done <- fn()
	}()
	t := time.NewTimer(guardTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return &DamagedError{File: file, Problem: fmt.Sprintf("reading it did not finish within %s", guardTimeout)}
	}
}

// flatError keeps only the message of an engine's error. Pebble's errors
// print stack traces and details under %+v, which is how log/slog's text
// handler formats errors; the exporter's log lines stay one line each.
type flatError struct {
	msg string
	err error
}

func (e *flatError) Error() string { return e.msg }
func (e *flatError) Unwrap() error { return e.err }

// flat returns err with its message only (nil for nil).
func flat(err error) error {
	if err == nil {
		return nil
	}
	return &flatError{msg: err.Error(), err: err}
}
