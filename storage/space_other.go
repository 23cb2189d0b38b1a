//go:build !unix

package storage

// freeBytes is unknown here: commits are not held back for space.
func freeBytes(string) (uint64, bool) { return 0, false }
