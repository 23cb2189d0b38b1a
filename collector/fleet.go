package collector

import (
	"cmp"
	"slices"
	"sync"
)

// Fleet is the committed state of every tracked server, plus the counters
// that describe how it came to be. Only the Writer changes it; scrapes and
// API reads take consistent snapshots.
type Fleet struct {
	mu      sync.RWMutex
	servers map[Key]*Server
	stats   Stats
}

// Stats are the exporter's own counters about received events. They live
// beside the servers so that a snapshot shows both as of the same instant.
type Stats struct {
	// Outcomes counts received events by outcome.
	Outcomes [numOutcomes]uint64
	// LastReceivedMs is the exporter's clock when the last event came in.
	LastReceivedMs int64
	// StorageErrors counts commits the store refused.
	StorageErrors uint64
}

// Snapshot is a copy of the fleet taken at one instant.
type Snapshot struct {
	Servers []Server
	Stats   Stats
}

// NewFleet returns an empty fleet.
func NewFleet() *Fleet {
	return &Fleet{servers: make(map[Key]*Server)}
}

// Len is the number of tracked servers.
func (f *Fleet) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.servers)
}

// Get returns a copy of one server's record.
func (f *Fleet) Get(k Key) (Server, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.servers[k]
	if !ok {
		return Server{}, false
	}
	return *s, true
}

// Snapshot copies the fleet, sorted by origin and id so that every output
// built from it is deterministic.
func (f *Fleet) Snapshot() Snapshot {
	f.mu.RLock()
	snap := Snapshot{Servers: make([]Server, 0, len(f.servers)), Stats: f.stats}
	for _, s := range f.servers {
		snap.Servers = append(snap.Servers, *s)
	}
	f.mu.RUnlock()
	slices.SortFunc(snap.Servers, func(a, b Server) int {
		return cmp.Or(cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Info.ID, b.Info.ID))
	})
	return snap
}

// lookup returns the committed record of k; only the Writer calls it, and
// only the Writer mutates the map, so it needs no lock.
func (f *Fleet) lookup(k Key) *Server { return f.servers[k] }

// publish makes a committed group of changes visible, all at once.
func (f *Fleet) publish(changes map[Key]*Server, outcomes [numOutcomes]uint64, receivedMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, s := range changes {
		if s == nil {
			delete(f.servers, k)
		} else {
			f.servers[k] = s
		}
	}
	for i, n := range outcomes {
		f.stats.Outcomes[i] += n
	}
	f.stats.LastReceivedMs = max(f.stats.LastReceivedMs, receivedMs)
}

func (f *Fleet) countInvalid(n int, receivedMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Outcomes[OutcomeInvalid] += uint64(n)
	f.stats.LastReceivedMs = max(f.stats.LastReceivedMs, receivedMs)
}

func (f *Fleet) countStorageError() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.StorageErrors++
}
