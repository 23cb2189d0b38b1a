package replica

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// Every replica publishes, at each probe, how far it folded the log and
// the digest of its fleet at its last checkpoint (storage.Presence). Two
// things rest on it:
//
//   - After a loss, the log is rebuilt from the fleet of the replica that
//     folded the most: the others wait until every live replica said what
//     it holds after the loss, and leave the rebuild to any that folded an
//     entry the log no longer has and they lack. Otherwise the rebuild
//     would drop what that replica had folded (acknowledged events
//     included), and its counters would go back when it reloaded.
//   - Replicas that folded the same checkpoint must hold the same fleet
//     there; one that finds its digest differs from another's reloads the
//     fleet from the shared store, and says so.

// peerBook is what a replica knows of the others, from its probes. It
// remembers a replica for presenceTTL after it last saw it, so that a
// replica whose presence was lost with the rest of Redis (FLUSHALL) is
// still waited for until it publishes again.
type peerBook struct {
	mu   sync.Mutex
	seen map[string]seenPeer
}

type seenPeer struct {
	storage.Peer
	at time.Time // when a probe last returned it, by this process's clock
}

// note records the peers a probe returned, and forgets those not seen for
// presenceTTL.
func (b *peerBook) note(st storage.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = make(map[string]seenPeer)
	}
	now := time.Now()
	for _, p := range st.Peers {
		if st.Now-p.PublishedMs <= presenceTTL.Milliseconds() {
			b.seen[p.Name] = seenPeer{Peer: p, at: now}
		}
	}
	for name, p := range b.seen {
		if now.Sub(p.at) > presenceTTL {
			delete(b.seen, name)
		}
	}
}

// live returns the replicas seen within presenceTTL.
func (b *peerBook) live() []seenPeer {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]seenPeer, 0, len(b.seen))
	for _, p := range b.seen {
		if time.Since(p.at) <= presenceTTL {
			out = append(out, p)
		}
	}
	return out
}

// lossEpisode is a stretch of time during which the follower finds the log
// broken, from the first probe that said so to the first that found it
// whole again.
type lossEpisode struct {
	since   int64  // the store's clock at the first probe that found it
	deferTo string // the replica this one last left the rebuild to
}

// saw notes what a probe found: a loss starts an episode (or continues
// it); a whole log ends it.
func (l *lossEpisode) saw(st storage.State) {
	broken := st.Loss != storage.LossNone || st.Lost
	switch {
	case broken && l.since == 0:
		*l = lossEpisode{since: st.Now}
	case !broken && !st.Rebuilding:
		*l = lossEpisode{}
	}
}

// waitFor names the replica this one must wait for before it rebuilds the
// log, and why; empty when it may rebuild now. After a loss a probe found
// (since, the store's clock when this replica first saw it; 0 for a loss a
// read found), a live replica must first have said what it folded since.
// Any live replica that folded an entry the log no longer has, past this
// replica's position, rebuilds instead. A replica that says nothing for
// presenceTTL is gone (dead or paused): the rebuild goes on without it,
// and without what only it had folded. When the snapshot is what was lost,
// it covers nothing.
func (r *replica) waitFor(st storage.State, loss storage.Loss, since int64) string {
	published := make(map[string]storage.Peer, len(st.Peers))
	for _, p := range st.Peers {
		published[p.Name] = p
	}
	for _, seen := range r.peers.live() {
		p, ok := published[seen.Name]
		switch {
		case !ok && since != 0:
			return fmt.Sprintf("replica %s, to say again what it folded (its presence is gone from the store)", seen.Name)
		case !ok, st.Now-p.PublishedMs > presenceTTL.Milliseconds():
			continue // gone
		case p.PublishedMs < since:
			return fmt.Sprintf("replica %s, to say what it folded since the loss", p.Name)
		case (!p.Covered || loss == storage.LossSnapshot) && storage.Ahead(p.Position, r.position):
			return fmt.Sprintf("replica %s, which folded more (through %s; this replica through %s), to rebuild it",
				p.Name, p.Position, r.position)
		}
	}
	return ""
}

// checkpoint is where a replica last compared its fleet: a position and
// the digest of its fleet there.
type checkpoint struct{ position, digest string }

// check records the digest of the fleet at the position just folded, for
// the monitor to publish and compare.
func (r *replica) check() {
	snap := r.fleet.FoldedSnapshot()
	snap.Stats.LastReceivedMs = 0 // each replica's own clock, not folded
	data, err := encodeSnapshot(&snap)
	if err != nil {
		return
	}
	sum := sha256.Sum256(data)
	r.checked.Store(&checkpoint{position: r.position, digest: hex.EncodeToString(sum[:12])})
}

// presence is what the monitor publishes of this replica.
func (r *replica) presence() storage.Presence {
	var p storage.Presence
	if at := r.at.Load(); at != nil {
		p.Position = *at
	}
	if c := r.checked.Load(); c != nil {
		p.Checked, p.Digest = c.position, c.digest
	}
	return p
}

// compare looks for a live replica that folded this replica's last
// checkpoint into another fleet; it reports whether it found one, and
// tells the follower.
func (r *replica) compare(st storage.State) bool {
	mine := r.checked.Load()
	if mine == nil || mine.position == "" {
		return false
	}
	for _, p := range st.Peers {
		if st.Now-p.PublishedMs <= presenceTTL.Milliseconds() && p.Checked == mine.position &&
			p.Digest != "" && p.Digest != mine.digest {
			note := fmt.Sprintf("replica %s holds another fleet at %s (digest %s, this replica's %s)",
				p.Name, mine.position, p.Digest, mine.digest)
			r.disagree.Store(&note)
			return true
		}
	}
	return false
}
