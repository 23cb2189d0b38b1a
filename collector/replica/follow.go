package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// Restore loads the fleet, retrying while the store is unreachable (and
// rebuilding the log when it is broken), then follows the log and watches
// the store.
func (r *replica) Restore(ctx context.Context) error {
	started := time.Now()
	for backoff := 100 * time.Millisecond; ; {
		err := r.start(ctx, time.Since(started) >= startupDefer)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := backoff
		if errors.Is(err, errWaitForRebuild) {
			// Look again as often as a running replica probes: the
			// others wait for this one's presence too.
			wait = min(backoff, probeInterval)
		} else {
			r.logger.Warn("Loading the fleet from the shared store failed; retrying",
				"err", r.log.Explain(ctx, err), "retry_in", backoff)
			backoff = min(2*backoff, maxBackoff)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	r.waiting = time.Time{}
	r.health.started()
	r.logger.Info("Following the shared log", "replica", r.log.Name(), "position", r.position)
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		var monitor sync.WaitGroup
		monitor.Go(func() { r.monitor(ctx) })
		r.follow(ctx)
		monitor.Wait()
	}()
	return nil
}

// errWaitForRebuild says that another replica rebuilds the log (or should,
// being up already): this one waits for it.
var errWaitForRebuild = errors.New("waiting for the shared log to be rebuilt")

// start loads the fleet of a starting replica. A broken log is left to the
// running replicas for startupDefer (they hold fuller fleets, and say so
// in their presence); after that, or when Redis holds nothing at all and
// no replica runs, this replica rebuilds it itself.
func (r *replica) start(ctx context.Context, mayRebuild bool) error {
	st, err := r.probe(ctx, r.presence())
	if err != nil {
		return err
	}
	r.loss.saw(st)
	if err := r.checkMemory(ctx); err != nil {
		return err
	}
	switch {
	case st.Rebuilding, st.Loss != storage.LossNone && !mayRebuild:
		return errWaitForRebuild
	case st.Loss == storage.LossAll:
		// A new log, or one lost while no replica ran (running replicas
		// would have rebuilt it by now): nothing is known of what it held.
		return r.rebuild(ctx, st, storage.LossNone, "")
	case st.Loss != storage.LossNone:
		return r.rebuild(ctx, st, st.Loss, st.Detail)
	}
	err = r.load(ctx)
	switch {
	case errors.Is(err, errSnapshotDiscarded):
		return errWaitForRebuild
	case errors.Is(err, storage.ErrGap) && mayRebuild:
		return r.rebuildAfterRead(ctx, st, storage.LossLog, err.Error())
	case errors.Is(err, storage.ErrGap):
		return errWaitForRebuild
	}
	return err
}

// errSnapshotDiscarded says that the snapshot could not be read, and was
// set aside: every replica now finds it lost, and the replica that folded
// the most rebuilds the log.
var errSnapshotDiscarded = errors.New("the shared snapshot cannot be read; set it aside for the log to be rebuilt")

// load replaces the fleet with the latest snapshot and folds the log after
// it. A snapshot that cannot be read leaves the fleet as it was, and is
// set aside (errSnapshotDiscarded), since no replica can load it.
func (r *replica) load(ctx context.Context) error {
	snap, err := r.log.LoadSnapshot(ctx)
	if err != nil {
		return err
	}
	if err := replaceFleet(r.fleet, snap.Data); err != nil {
		r.logger.Error("The shared snapshot cannot be read; setting it aside so that the log is rebuilt",
			"through", snap.Through, "err", err)
		if derr := r.log.DiscardSnapshot(ctx, snap.Through); derr != nil {
			return derr
		}
		return fmt.Errorf("%w: %w", errSnapshotDiscarded, err)
	}
	r.setPosition(snap.Through)
	r.base = snap.Through
	r.folded.reset()
	r.check()
	for {
		n, err := r.step(ctx, 0)
		if err != nil || n == 0 {
			return err
		}
	}
}

// moveTo is where the follower is, after folding an entry.
func (r *replica) moveTo(pos string) { r.position = pos }

// setPosition moves the follower to pos, which it holds whole (a snapshot
// loaded, a log rebuilt), and tells the monitor.
func (r *replica) setPosition(pos string) {
	r.position = pos
	r.at.Store(&pos)
}

// step reads the entries after the position, waiting up to wait, and folds
// them. It returns how many it folded.
func (r *replica) step(ctx context.Context, wait time.Duration) (int, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, wait+probeTimeout)
	defer cancel()
	r.interrupt.Store(&cancel)
	defer r.interrupt.Store(nil)
	entries, err := r.log.Read(ctx, r.position, wait)
	if errors.Is(err, context.Canceled) && parent.Err() == nil {
		return 0, nil // interrupted by an alarm
	}
	if err != nil {
		return 0, err
	}
	if len(entries) > 0 {
		// What the monitor publishes is never less than what is folded:
		// another replica must not rebuild the log without these.
		last := entries[len(entries)-1].Position
		r.at.Store(&last)
	}
	for _, e := range entries {
		r.apply(e)
	}
	return len(entries), nil
}

// apply folds one entry and answers its requests if this replica sent it;
// at a checkpoint it records the digest of the fleet.
func (r *replica) apply(e storage.Entry) {
	prev := r.position
	r.moveTo(e.Position)
	if storage.Checkpoint(prev, e.Position, checkpointInterval) {
		defer r.check()
	}
	ent, err := decodeEntry(e.Data)
	if err != nil {
		// Every replica skips it alike, so they still agree.
		r.logger.Error("Skipping an unreadable entry of the shared log", "position", e.Position, "err", err)
		return
	}
	r.folded.add(ent.Nonce)
	results := r.folder.Apply(ent.Commands)
	if group := r.take(ent.Nonce); group != nil {
		for i, req := range group {
			if i < len(results) {
				req.Answer(results[i], nil)
			}
		}
	}
}

// follow folds new entries as they come until ctx ends; it reloads or
// rebuilds the fleet when the log moved past this replica or lost data, and
// gets back by itself after the store was unreachable. Any failure to read
// is looked into at once (a key of another type fails every read, and only
// a probe tells that the log lost it).
func (r *replica) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := r.step(ctx, followWait)
		if err != nil || r.alarmed() {
			err = r.inspect(ctx, err)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errWaitForRebuild):
			// Another replica rebuilds, in milliseconds: look again soon.
			sleep(ctx, rebuildPoll)
			r.raiseAlarm()
			continue
		case err != nil:
			r.health.followFailed(err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		r.waiting = time.Time{}
		r.health.followed()
		if n > 0 {
			r.maybeSave(ctx)
		}
	}
}

// inspect probes the log after an alarm of the monitor, an append the
// store refused or a failed read (readErr), and does what it calls for:
// wait for another replica's rebuild, rebuild, reload a log another
// replica rebuilt or that a snapshot trimmed past this replica, or reload
// a fleet that disagrees with another replica's.
func (r *replica) inspect(ctx context.Context, readErr error) error {
	st, err := r.probe(ctx, r.presence())
	if err != nil {
		return err
	}
	r.loss.saw(st)
	switch {
	case st.Rebuilding:
		return errWaitForRebuild
	case st.Loss != storage.LossNone:
		return r.rebuild(ctx, st, st.Loss, st.Detail)
	case !st.Current:
		r.logger.Info("The shared log was rebuilt by another replica; reloading the fleet", "epoch", st.Epoch)
		return r.reload(r.load(ctx))
	case st.Lost:
		return r.rebuild(ctx, st, storage.LossLog, st.Detail)
	case errors.Is(readErr, storage.ErrGap) && st.Present:
		// Entries after this replica's position, which the log holds,
		// are gone: lost, not trimmed.
		return r.rebuildAfterRead(ctx, st, storage.LossLog, readErr.Error())
	case errors.Is(readErr, storage.ErrGap):
		r.logger.Info("The shared log moved past this replica; reloading the fleet", "err", readErr)
		return r.reload(r.load(ctx))
	}
	if note := r.disagree.Swap(nil); note != nil && time.Since(r.lastReload) >= snapshotInterval {
		r.lastReload = time.Now()
		r.logger.Warn("This replica's fleet differs from another replica's; reloading it from the shared store", "why", *note)
		return r.reload(r.load(ctx))
	}
	return readErr
}

// reload handles the outcome of a load: after a snapshot that cannot be
// read was set aside, the log is rebuilt (by this replica or another).
func (r *replica) reload(err error) error {
	if errors.Is(err, errSnapshotDiscarded) {
		return errWaitForRebuild
	}
	return err
}
