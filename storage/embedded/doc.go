// Package embedded is the exporter's own store: a storage.Store kept in a
// Pebble database on local disk, so that a single exporter needs no other
// service. Every commit is one atomic batch synced to Pebble's checksummed
// write-ahead log before it returns. Open refuses a store it may not use (one
// line naming the path and the system's reason), reads every record before
// anything is written (so every checksum is verified, however long it
// takes), and calls damage only what the store's own files say, naming the
// file and the cause; with StartEmptyOnDamage it moves a damaged store
// aside and remembers that it did. Stores of the earlier two-file bbolt
// layout are converted at the first start.
package embedded
