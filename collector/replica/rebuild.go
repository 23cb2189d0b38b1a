package replica

import (
	"context"
	"errors"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// foldedNonces bounds the memory of which entries a replica folded since
// its last load: the entries a rebuild finds in the log are at most a few
// snapshot intervals old.
const foldedNonces = 1 << 16

// rebuild makes the log whole again, as a new epoch, from the fleet this
// replica holds and every entry that remains in the log that it has not
// folded yet; loss says what was lost (LossNone: the log is new), as the
// probe st found it. It returns errWaitForRebuild when another replica
// holds the right to rebuild, or should rebuild instead (waitFor).
//
// While a rebuild runs, the store refuses appends, so nothing acknowledged
// can fall between the entries read here and the new epoch.
func (r *replica) rebuild(ctx context.Context, st storage.State, loss storage.Loss, detail string) error {
	return r.rebuildLog(ctx, st, loss, detail, true)
}

// rebuildAfterRead is rebuild for a loss that a read found (entries
// missing between others, a snapshot that cannot be read) and a probe
// does not see.
func (r *replica) rebuildAfterRead(ctx context.Context, st storage.State, loss storage.Loss, detail string) error {
	return r.rebuildLog(ctx, st, loss, detail, false)
}

func (r *replica) rebuildLog(ctx context.Context, st storage.State, loss storage.Loss, detail string, probed bool) error {
	since := r.loss.since
	if !probed {
		since = 0
	}
	who := r.waitFor(st, loss, since)
	if r.waiting.IsZero() {
		r.waiting = time.Now()
	}
	waited := time.Since(r.waiting)
	switch {
	case who != "" && waited <= deferLimit:
		if who != r.loss.deferTo {
			r.logger.Info("The shared log lost data; waiting before rebuilding it", "for", who, "cause", loss.String())
			r.loss.deferTo = who
		}
		return errWaitForRebuild
	case who != "":
		r.logger.Warn("Rebuilding the shared log without waiting longer; what only that replica folded is lost",
			"waited_for", who, "waited", waited.Round(time.Millisecond))
	}
	won, err := r.log.BeginRebuild(ctx, rebuildTTL)
	if err != nil {
		return err
	}
	if !won {
		return errWaitForRebuild
	}
	// A rebuild that runs past the lock's expiry fails at its end rather
	// than replace another's: bound it by the lock.
	ctx, cancel := context.WithTimeout(ctx, rebuildTTL)
	defer cancel()
	// What was seen before taking the right may be stale: another replica
	// may have rebuilt the log just before.
	st, err = r.log.Probe(ctx, r.presence())
	if err != nil || (st.Loss == storage.LossNone && !st.Lost && (probed || !st.Current)) {
		cancelErr := r.log.CancelRebuild(ctx)
		switch {
		case err != nil:
			return errors.Join(err, cancelErr)
		case !st.Current: // it was paused, or slow, after taking the right
			r.logger.Info("The shared log was rebuilt by another replica; reloading the fleet", "epoch", st.Epoch)
			return r.reload(r.load(ctx))
		}
		return cancelErr
	}
	if r.position == "" {
		r.loadWhatRemains(ctx)
	}
	entries, err := r.log.Entries(ctx)
	if err != nil {
		return err
	}
	recovered := 0
	for _, e := range entries {
		if r.foldMissing(e) {
			recovered++
		}
	}
	snap := r.fleet.FoldedSnapshot()
	if loss != storage.LossNone {
		snap.Stats.DataLoss[loss]++
	}
	data, err := encodeSnapshot(&snap)
	if err != nil {
		return err
	}
	pos, err := r.log.FinishRebuild(ctx, data, r.position)
	if err != nil {
		return err
	}
	r.setPosition(pos)
	r.base = pos
	r.folded.reset()
	r.loss = lossEpisode{}
	if loss != storage.LossNone {
		var delta fleet.Stats
		delta.DataLoss[loss] = 1
		r.fleet.Count(&delta)
	}
	r.check()
	r.health.rebuilt()
	if loss == storage.LossNone {
		r.logger.Info("Created the shared log", "servers", len(snap.Servers))
		return nil
	}
	r.logger.Error("The shared store lost data; rebuilt the log from this replica's fleet and what remained",
		"cause", loss.String(), "lost", detail, "servers", len(snap.Servers), "entries_recovered", recovered,
		"replica", r.log.Name(), "epoch", pos)
	return nil
}

// loadWhatRemains gives a replica that never loaded the fleet the snapshot
// that remains, of whatever epoch, to rebuild from.
func (r *replica) loadWhatRemains(ctx context.Context) {
	snap, err := r.log.LoadSnapshot(ctx)
	if err != nil {
		return
	}
	if err := replaceFleet(r.fleet, snap.Data); err != nil {
		r.logger.Warn("The remaining snapshot cannot be read; rebuilding without it", "err", err)
		return
	}
	r.base = snap.Through
}

// foldMissing folds e unless this replica folded it already (by itself, or
// through the snapshot it loaded). It reports whether it folded it.
func (r *replica) foldMissing(e storage.Entry) bool {
	if storage.Covered(r.base, e.Position) {
		return false
	}
	if ent, err := decodeEntry(e.Data); err == nil && r.folded.has(ent.Nonce) {
		return false
	}
	r.apply(e)
	return true
}

// nonceSet remembers the last n nonces added.
type nonceSet struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newNonceSet(n int) *nonceSet {
	return &nonceSet{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (s *nonceSet) add(nonce string) {
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = nonce
	s.set[nonce] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

func (s *nonceSet) has(nonce string) bool {
	_, ok := s.set[nonce]
	return ok
}

func (s *nonceSet) reset() {
	clear(s.set)
	clear(s.ring)
	s.next = 0
}
