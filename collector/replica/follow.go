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
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, maxBackoff) {
		err := r.start(ctx, time.Since(started) >= startupDefer)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errWaitForRebuild) {
			r.logger.Warn("Loading the fleet from the shared store failed; retrying",
				"err", r.log.Explain(ctx, err), "retry_in", backoff)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
	r.health.followed()
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
// running replicas for startupDefer (they hold fuller fleets); after that,
// or when Redis holds nothing at all, this replica rebuilds it itself.
func (r *replica) start(ctx context.Context, mayRebuild bool) error {
	st, err := r.log.Probe(ctx, "")
	if err != nil {
		return err
	}
	r.health.probed(nil)
	if err := r.checkMemory(ctx); err != nil {
		return err
	}
	switch {
	case st.Rebuilding, st.Loss != storage.LossNone && !mayRebuild:
		return errWaitForRebuild
	case st.Loss == storage.LossAll:
		// A new log, or one lost while no replica ran (running replicas
		// would have rebuilt it by now): nothing is known of what it held.
		return r.rebuild(ctx, storage.LossNone, "")
	case st.Loss != storage.LossNone:
		return r.rebuild(ctx, st.Loss, st.Detail)
	}
	err = r.load(ctx)
	if errors.Is(err, storage.ErrGap) && mayRebuild {
		return r.rebuild(ctx, storage.LossLog, err.Error())
	}
	if errors.Is(err, storage.ErrGap) {
		return errWaitForRebuild
	}
	return err
}

// load replaces the fleet with the latest snapshot and folds the log after it.
func (r *replica) load(ctx context.Context) error {
	snap, err := r.log.LoadSnapshot(ctx)
	if err != nil {
		return err
	}
	if err := replaceFleet(r.fleet, snap.Data); err != nil {
		return fmt.Errorf("snapshot through %s: %w", snap.Through, err)
	}
	r.moveTo(snap.Through)
	r.base = snap.Through
	r.folded.reset()
	for {
		n, err := r.step(ctx, 0)
		if err != nil || n == 0 {
			return err
		}
	}
}

func (r *replica) moveTo(pos string) {
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
	for _, e := range entries {
		r.apply(e)
	}
	return len(entries), nil
}

// apply folds one entry and answers its requests if this replica sent it.
func (r *replica) apply(e storage.Entry) {
	r.moveTo(e.Position)
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
// gets back by itself after the store was unreachable.
func (r *replica) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := r.step(ctx, followWait)
		if err == nil && r.alarmed() {
			err = r.inspect(ctx)
		}
		if errors.Is(err, storage.ErrGap) {
			err = r.recover(ctx, err)
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
		r.health.followed()
		if n > 0 {
			r.maybeSave(ctx)
		}
	}
}

// recover gets past a gap in the log: a reload suffices when a snapshot
// trimmed what this replica had not read; when the log itself lost entries
// the reload finds the gap again, and the log is rebuilt.
func (r *replica) recover(ctx context.Context, gap error) error {
	r.logger.Info("The shared log moved past this replica; reloading the fleet", "err", gap)
	err := r.load(ctx)
	if !errors.Is(err, storage.ErrGap) {
		return err
	}
	return r.rebuild(ctx, storage.LossLog, err.Error())
}

// inspect probes the log after an alarm of the monitor (or of an append
// the store refused) and does what it calls for.
func (r *replica) inspect(ctx context.Context) error {
	st, err := r.log.Probe(ctx, r.position)
	if err != nil {
		return err
	}
	switch {
	case st.Rebuilding:
		return errWaitForRebuild
	case st.Loss != storage.LossNone:
		return r.rebuild(ctx, st.Loss, st.Detail)
	case !st.Current:
		r.logger.Info("The shared log was rebuilt by another replica; reloading the fleet", "epoch", st.Epoch)
		return r.load(ctx)
	case st.Lost:
		return r.rebuild(ctx, storage.LossLog, st.Detail)
	}
	return nil
}
