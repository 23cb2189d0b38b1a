package fleet

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ring"
)

// NumLosses is storage.NumLosses, the size of Stats.DataLoss: the fleet
// counts a shared log's losses by storage.Loss without importing the
// storage package, since the domain knows no store. The replica, which
// counts them, checks at compile time that the two agree.
const NumLosses = 5

// Fleet is the committed state of every tracked server, plus the counters
// that describe how it came to be. Only its writer changes it (through
// Staging and Publish); scrapes and API reads take consistent snapshots.
type Fleet struct {
	mu      sync.RWMutex
	servers map[Key]*Server
	// stopped counts the servers in StateStopped, so that a full fleet
	// knows at once whether it can evict.
	stopped int
	stats   Stats
	// offset keeps the counters this process shows from going back when
	// its fleet is replaced (Replace) by one that counted less (a
	// replica's log rebuilt after a loss): Prometheus would read a
	// decrease as a reset.
	offset Stats
	// history holds each server's last applied lifecycle events.
	history map[Key]*history
	// storageUp is whether the store accepted the last write (or, for a
	// replica, whether it follows the shared store).
	storageUp atomic.Bool
	// gateway is the view from the Gateway's REST API (nil: none yet);
	// apiFailedMs is when this exporter's last poll of the API failed.
	gateway     *GatewayView
	apiFailedMs atomic.Int64
}

// Stats are the exporter's own counters about received events. They live
// beside the servers so that a snapshot shows both as of the same instant.
type Stats struct {
	// Outcomes counts received events by outcome.
	Outcomes [NumOutcomes]uint64
	// LastReceivedMs is the exporter's clock when the last event came in.
	LastReceivedMs int64
	// StorageErrors counts commits the store refused.
	StorageErrors uint64
	// Forgotten counts servers forgotten, by reason.
	Forgotten [NumForgetReasons]uint64
	// DataLoss counts the losses of a shared log that replicas rebuilt it
	// from, by what was lost (a storage.Loss).
	DataLoss [NumLosses]uint64
	// Limit is the configured maximum of tracked servers (0: none).
	Limit int
}

// Add accumulates the counters of d into s, and keeps the later of the two
// last-received times. Limit is not a counter and stays as it is.
func (s *Stats) Add(d *Stats) {
	for i, n := range d.Outcomes {
		s.Outcomes[i] += n
	}
	for i, n := range d.Forgotten {
		s.Forgotten[i] += n
	}
	for i, n := range d.DataLoss {
		s.DataLoss[i] += n
	}
	s.StorageErrors += d.StorageErrors
	s.LastReceivedMs = max(s.LastReceivedMs, d.LastReceivedMs)
}

// keepUp raises offset so that shared+offset never falls below shown, the
// counters this process showed before its shared counters were replaced.
func (offset *Stats) keepUp(shown, shared *Stats) {
	raise := func(shown, shared uint64, off *uint64) {
		if shared+*off < shown {
			*off = shown - shared
		}
	}
	for i := range shown.Outcomes {
		raise(shown.Outcomes[i], shared.Outcomes[i], &offset.Outcomes[i])
	}
	for i := range shown.Forgotten {
		raise(shown.Forgotten[i], shared.Forgotten[i], &offset.Forgotten[i])
	}
	for i := range shown.DataLoss {
		raise(shown.DataLoss[i], shared.DataLoss[i], &offset.DataLoss[i])
	}
}

// Snapshot is a copy of the fleet taken at one instant.
type Snapshot struct {
	Servers   []Server
	Stats     Stats
	StorageUp bool
	// Gateway is the view from the Gateway's REST API, nil before the first
	// successful poll; shared and read-only.
	Gateway *GatewayView
	// APIFailedMs is when this exporter's last poll of the API failed.
	APIFailedMs int64
}

// New returns an empty fleet.
func New() *Fleet {
	return &Fleet{servers: make(map[Key]*Server), history: make(map[Key]*history)}
}

func isStopped(s *Server) bool { return s != nil && s.State == StateStopped }

// Len is the number of tracked servers.
func (f *Fleet) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.servers)
}

// Snapshot copies the fleet, sorted by origin and id so that every output
// built from it is deterministic. Its counters are those this process
// shows (never going back).
func (f *Fleet) Snapshot() Snapshot {
	snap := f.FoldedSnapshot()
	snap.Stats.Add(&f.offset)
	return snap
}

// FoldedSnapshot is Snapshot with the counters as the staged groups made
// them, without what keeps the shown ones from going back after a Replace:
// what a replica saves for the others.
func (f *Fleet) FoldedSnapshot() Snapshot {
	f.mu.RLock()
	snap := Snapshot{Servers: make([]Server, 0, len(f.servers)), Stats: f.stats, StorageUp: f.storageUp.Load(),
		Gateway: f.gateway, APIFailedMs: f.apiFailedMs.Load()}
	for _, s := range f.servers {
		snap.Servers = append(snap.Servers, *s)
	}
	f.mu.RUnlock()
	slices.SortFunc(snap.Servers, func(a, b Server) int {
		return cmp.Or(cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Info.ID, b.Info.ID))
	})
	return snap
}

// lookup returns the committed record of k; only the writer's staging
// calls it, and only the writer publishes, so it needs no lock.
func (f *Fleet) lookup(k Key) *Server { return f.servers[k] }

// Publish makes a staged group of changes visible, all at once, with the
// events that made them, the Gateway view the group observed and the
// counters that describe them. The writer calls it once the changes are
// durable, and before it stages the next group.
func (f *Fleet) Publish(st *Staging) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.gateway != nil {
		f.gateway = st.gateway
	}
	for _, e := range st.applied {
		h := f.history[e.key]
		if h == nil {
			h = new(ring.New[storedEvent](HistoryLen))
			f.history[e.key] = h
		}
		h.Add(store(e.ev))
	}
	f.put(st.changes)
	f.stats.Add(&st.stats)
}

// put replaces the records of changes (nil: forget the server).
func (f *Fleet) put(changes map[Key]*Server) {
	for k, s := range changes {
		f.stopped += boolInt(isStopped(s)) - boolInt(isStopped(f.servers[k]))
		if s == nil {
			delete(f.servers, k)
			delete(f.history, k)
		} else {
			f.servers[k] = s
		}
	}
}

// Restore loads the servers and the Gateway view (nil: none) read back
// from a store into an empty fleet, before the exporter is ready.
func (f *Fleet) Restore(servers map[Key]*Server, view *GatewayView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if view != nil {
		f.gateway = view
	}
	f.put(servers)
}

// Count adds counters that come with no change of servers: invalid bodies,
// store failures, losses of a shared log.
func (f *Fleet) Count(delta *Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Add(delta)
}

// SetLimit records the configured maximum of tracked servers, for the
// liveswitch_exporter_servers_limit gauge.
func (f *Fleet) SetLimit(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Limit = n
}

// SetStorageUp records whether the store accepts the fleet's changes.
func (f *Fleet) SetStorageUp(up bool) { f.storageUp.Store(up) }

// PollFailed records that this exporter's poll of the Gateway's API failed
// at t. The fleet keeps its last good observation; liveswitch_api_up turns
// 0 until a later poll succeeds.
func (f *Fleet) PollFailed(t time.Time) { f.apiFailedMs.Store(t.UnixMilli()) }

// Replace swaps the whole fleet for one loaded from elsewhere (a replica
// loads the others' snapshot): its servers, the counters folded with them
// (Outcomes, Forgotten, DataLoss, LastReceivedMs) and its Gateway view. The
// counters of what this exporter alone saw (invalid bodies, store failures)
// are kept, and the folded ones, as shown, never go back.
func (f *Fleet) Replace(servers map[Key]*Server, folded *Stats, view *GatewayView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers, f.stopped, f.gateway = servers, 0, view
	for _, s := range servers {
		f.stopped += boolInt(isStopped(s))
	}
	for k := range f.history {
		if servers[k] == nil {
			delete(f.history, k)
		}
	}
	shown := f.stats
	shown.Add(&f.offset)
	invalid := f.stats.Outcomes[OutcomeInvalid]
	f.stats.Outcomes, f.stats.Forgotten, f.stats.DataLoss = folded.Outcomes, folded.Forgotten, folded.DataLoss
	f.stats.Outcomes[OutcomeInvalid] = invalid
	f.stats.LastReceivedMs = max(f.stats.LastReceivedMs, folded.LastReceivedMs)
	f.offset.keepUp(&shown, &f.stats)
}
