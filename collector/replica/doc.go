// Package replica shares one fleet between exporters through a
// storage.Log (Redis): it is a Backend of the writer that appends each
// group of commands to the shared log instead of applying it, and follows
// the log, folding every entry by the same rules in the same order, so
// that every replica holds the same fleet whichever one received an event.
// It checks the shared store's health for readiness, saves snapshots of the
// fleet so that the log can be trimmed, and rebuilds the log from the
// fleet it holds when the store lost part of it. The log's entries and its
// snapshots are a wire format between replicas: what earlier versions wrote
// is still read.
package replica
