package writer

import (
	"errors"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// ErrStorage is matched (errors.Is) by every failure of the store: nothing
// was applied and the sender should retry (the HTTP layer answers 503).
var ErrStorage = errors.New("storage unavailable")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("fleet writer is closed")

// StorageError is a failure of the store to take a group of changes.
// Nothing of the group was applied.
type StorageError struct {
	// Hint says what happened and what to do, in words fit for any client:
	// no file, address or error text of the store, which stay in the log.
	Hint string
	Err  error
}

func (e *StorageError) Error() string { return "storage unavailable: " + e.Err.Error() }

// Unwrap lets errors.Is match both ErrStorage and the store's own error.
func (e *StorageError) Unwrap() []error { return []error{ErrStorage, e.Err} }

// storageError wraps a failure of the store with the hint its kind calls for.
func storageError(err error) *StorageError {
	hint := "not applied: the exporter could not store the events; retry later"
	switch {
	case errors.Is(err, storage.ErrNoSpace):
		hint = "not applied: the exporter's disk is full (its operator must free space); retry later"
	case errors.Is(err, storage.ErrNotReplicated):
		hint = "stored but not confirmed by enough Redis replicas in time; retry (the retry is recognised as a duplicate)"
	case errors.Is(err, storage.ErrUncertain):
		hint = "not confirmed: the shared store failed while taking the events, which may or may not be applied; retry (the retry is recognised as a duplicate)"
	}
	return &StorageError{Hint: hint, Err: err}
}
