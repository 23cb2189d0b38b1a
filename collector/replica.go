package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// Timings of a replica. They are variables so that tests can shorten them.
var (
	// appendTimeout bounds one append, so that an unreachable store answers
	// webhooks 503 quickly instead of holding them.
	appendTimeout = 5 * time.Second
	// foldWait is how long a request whose events the store accepted waits
	// for this replica to fold them and report their outcomes; past it, it
	// is acknowledged without them.
	foldWait = 5 * time.Second
	// followWait is how long one read of the log waits for new entries.
	followWait = 500 * time.Millisecond
	// snapshotInterval spaces the snapshots that let the log be trimmed.
	snapshotInterval = 10 * time.Second
	// maxBackoff bounds the wait between two attempts to reach the store.
	maxBackoff = 5 * time.Second
)

// logEntry is what a replica appends to the shared log: the commands of one
// group, and a name by which the replica recognises its own group when it
// folds it, to answer the requests.
type logEntry struct {
	Nonce    string     `json:"n"`
	Commands []*command `json:"c"`
}

// replica is the backend of an exporter that shares its fleet with others
// through a storage.Log. Groups are appended to the log, not applied; every
// replica, this one included, follows the log and folds each entry with the
// same rules in the same order, so all of them hold the same fleet and
// counters whichever of them received an event.
type replica struct {
	w    *Writer
	log  storage.Log
	name string
	seq  uint64 // owned by the writer goroutine

	mu      sync.Mutex
	pending map[string][]*request

	up     atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
	saves  sync.WaitGroup

	// owned by the follower goroutine
	position string
	lastSave time.Time
	saving   atomic.Bool
}

// NewReplica starts the writer of a fleet shared with other replicas through
// log. Call Restore before accepting events and Close at the end. Every
// replica of one log must run with the same Limits, since each applies them.
func NewReplica(fleet *Fleet, log storage.Log, opts WriterOptions) *Writer {
	w := newWriter(fleet, &opts)
	w.backend = &replica{w: w, log: log, name: randomName(), pending: make(map[string][]*request)}
	go w.run()
	return w
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// restore loads the snapshot and the entries after it, retrying while the
// store is unreachable, then follows the log.
func (r *replica) restore(ctx context.Context) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, maxBackoff) {
		err := r.load(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.w.logger.Warn("Loading the fleet from the shared store failed; retrying", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
	r.markUp()
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go r.follow(ctx)
	return nil
}

// load replaces the fleet with the latest snapshot and folds the log after it.
func (r *replica) load(ctx context.Context) error {
	snap, err := r.log.LoadSnapshot(ctx)
	if err != nil {
		return err
	}
	servers, shared, err := decodeSnapshot(snap.Data)
	if err != nil {
		return fmt.Errorf("snapshot through %s: %w", snap.Through, err)
	}
	r.w.fleet.replace(servers, shared)
	r.position = snap.Through
	for {
		n, err := r.step(ctx, 0)
		if err != nil || n == 0 {
			return err
		}
	}
}

// step reads the entries after the position, waiting up to wait, and folds
// them. It returns how many it folded.
func (r *replica) step(ctx context.Context, wait time.Duration) (int, error) {
	entries, err := r.log.Read(ctx, r.position, wait)
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
	r.position = e.Position
	var ent logEntry
	if err := json.Unmarshal(e.Data, &ent); err != nil {
		// Every replica skips it alike, so they still agree.
		r.w.logger.Error("Skipping an unreadable entry of the shared log", "position", e.Position, "err", err)
		return
	}
	st, results, delta := foldGroup(r.w.fleet, r.w.opts.Limits, ent.Commands)
	r.w.publish(st, &delta)
	if group := r.take(ent.Nonce); group != nil {
		for i, req := range group {
			if i < len(results) {
				req.answer(results[i], nil)
			}
		}
	}
}

// follow folds new entries as they come until close, and gets back by itself
// after the store was unreachable or the log moved past this replica.
func (r *replica) follow(ctx context.Context) {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := r.step(ctx, followWait)
		if errors.Is(err, storage.ErrGap) {
			r.w.logger.Warn("The shared log moved past this replica; reloading the fleet", "err", err)
			err = r.load(ctx)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.markDown(err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		r.markUp()
		if n > 0 {
			r.maybeSave(ctx)
		}
	}
}

func (r *replica) markUp() {
	r.w.fleet.setStorageUp(true)
	if !r.up.Swap(true) && r.done != nil {
		r.w.logger.Info("Shared store reachable again; fleet caught up", "servers", r.w.fleet.Len())
	}
}

func (r *replica) markDown(err error) {
	r.w.fleet.setStorageUp(false)
	if r.up.Swap(false) {
		r.w.logger.Error("Shared store unreachable; webhooks are answered 503 until it returns", "err", err)
	}
}

// commit appends the group; the follower answers its requests when it folds
// the entry, or the timer does if it takes too long.
func (r *replica) commit(group []*request) {
	r.seq++
	nonce := fmt.Sprintf("%s/%d", r.name, r.seq)
	r.mu.Lock()
	r.pending[nonce] = group
	r.mu.Unlock()
	data, err := json.Marshal(logEntry{Nonce: nonce, Commands: commands(group)})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
		err = r.log.Append(ctx, data)
		cancel()
	}
	if err != nil {
		if group := r.take(nonce); group != nil {
			answerAll(group, Result{}, r.w.storageFailed(err, len(group)))
		}
		return
	}
	time.AfterFunc(foldWait, func() {
		if group := r.take(nonce); group != nil {
			r.w.logger.Warn("Events stored but not folded here in time; acknowledged without outcomes",
				"requests", len(group), "waited", foldWait)
			answerAll(group, Result{}, nil)
		}
	})
}

// take removes and returns the pending group of nonce: whoever takes it
// answers it, exactly once.
func (r *replica) take(nonce string) []*request {
	r.mu.Lock()
	defer r.mu.Unlock()
	group := r.pending[nonce]
	delete(r.pending, nonce)
	return group
}

func answerAll(group []*request, res Result, err error) {
	for _, req := range group {
		req.answer(res, err)
	}
}

func (r *replica) claim(ctx context.Context, duty string, ttl time.Duration) bool {
	won, err := r.log.Claim(ctx, duty, ttl)
	if err != nil {
		r.w.logger.Debug("Claiming a duty failed", "duty", duty, "err", err)
	}
	return won
}

func (r *replica) healthy() bool { return r.up.Load() }

func (r *replica) close() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.saves.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for nonce, group := range r.pending {
		answerAll(group, Result{}, ErrClosed)
		delete(r.pending, nonce)
	}
}

// sleep waits d unless ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
