package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// Timings of a replica. They are variables so that tests can shorten them.
var (
	// followWait is how long one read of the log waits for new entries.
	followWait = 500 * time.Millisecond
	// probeInterval spaces the checks of the shared store, which notice a
	// store that stopped answering or lost data even without traffic.
	probeInterval = 500 * time.Millisecond
	// probeTimeout bounds one check; a store slower than that is taken as
	// unreachable.
	probeTimeout = time.Second
	// memoryInterval spaces the checks of the store's eviction policy and
	// memory.
	memoryInterval = 5 * time.Second
	// snapshotInterval spaces the snapshots that let the log be trimmed.
	snapshotInterval = 10 * time.Second
	// maxBackoff bounds the wait between two attempts to reach the store.
	maxBackoff = 5 * time.Second
	// rebuildPoll is how often a replica waiting for another's rebuild
	// looks whether it is done.
	rebuildPoll = 50 * time.Millisecond
	// rebuildTTL is how long a replica may take to rebuild the log before
	// another may try: a holder that died or hangs wedges nothing longer.
	rebuildTTL = 5 * time.Second
	// presenceTTL is how long after its last probe a replica counts as
	// alive for the others: after a loss they wait for it (up to that long)
	// to say what it folded, and leave the rebuild to it if it folded more.
	presenceTTL = 6 * probeInterval
	// checkpointInterval spaces the checkpoints (by the time in the log's
	// entry ids) at which replicas compare the digests of their fleets.
	checkpointInterval = 5 * time.Second
	// deferLimit bounds how long a replica leaves the rebuild to another
	// that folded more but does not rebuild (it could not).
	deferLimit = rebuildTTL + presenceTTL
	// startupDefer is how long a starting replica that finds the log broken
	// (or absent) leaves the rebuild to running replicas, which hold fuller
	// fleets and probe every probeInterval.
	startupDefer = 3 * probeInterval
)

// DefaultTimeout bounds the answer to a webhook on a replica.
const DefaultTimeout = 2 * time.Second

// Options configure a replica.
type Options struct {
	// Timeout bounds the answer to a webhook, from when the writer takes
	// it: the append to the shared log and the wait for its fold together.
	// An append the store runs later than that is refused by the store
	// itself, so a request answered 503 is never applied; events stored
	// whose fold this replica did not see in time are answered pending.
	Timeout time.Duration
}

// logEntry is what a replica appends to the shared log: the commands of one
// group, and a name by which the replica recognises its own group when it
// folds it, to answer the requests.
type logEntry struct {
	Nonce    string            `json:"n"`
	Commands []*writer.Command `json:"c"`
}

// replica is the Backend of an exporter that shares its fleet with others
// through a storage.Log. Groups are appended to the log, not applied; every
// replica, this one included, follows the log and folds each entry with the
// same rules in the same order, so all of them hold the same fleet and
// counters whichever of them received an event. A monitor checks the log
// every probeInterval; when part of it was lost, one replica rebuilds it
// from the fleet it holds and what remains.
type replica struct {
	fleet    *fleet.Fleet
	log      storage.Log
	opts     Options
	now      func() time.Time // the exporter's clock
	logger   *slog.Logger
	failures *writer.Failures
	name     string
	seq      uint64 // owned by Commit, which the writer calls for one group at a time

	mu      sync.Mutex
	pending map[string][]*writer.Request

	health health
	alarm  chan struct{} // the monitor asks the follower to look at the log
	cancel context.CancelFunc
	done   chan struct{}
	saves  sync.WaitGroup

	// owned by the follower goroutine
	folder   *writer.Folder
	position string
	base     string    // the snapshot loaded last: entries it covers were folded
	folded   *nonceSet // entries folded since, by nonce
	lastSave time.Time
	saving   atomic.Bool
	// loss is the episode of lost data the follower is in, if any.
	loss lossEpisode
	// waiting is since when the follower waits for the log to be rebuilt
	// (zero when it does not).
	waiting time.Time
	// lastReload is when the follower last reloaded because it disagreed
	// with another replica.
	lastReload time.Time
	// at is the position the follower folded or is folding, for the
	// monitor, which publishes it.
	at atomic.Pointer[string]
	// checked is the follower's last checkpoint and the digest of its
	// fleet there, which the monitor publishes and compares.
	checked atomic.Pointer[checkpoint]
	// peers is what this replica knows of the others.
	peers peerBook
	// disagree names a replica whose fleet differs from this one's at a
	// checkpoint both folded; the follower reloads.
	disagree atomic.Pointer[string]
	// interrupt cancels the follower's read in progress, if any.
	interrupt atomic.Pointer[context.CancelFunc]
}

// New starts the writer of a fleet shared with other replicas through
// log. Call Restore before accepting events and Close at the end. Every
// replica of one log must run with the same Limits, since each applies them.
func New(f *fleet.Fleet, log storage.Log, opts writer.Options, ropts Options) *writer.Writer {
	if ropts.Timeout <= 0 {
		ropts.Timeout = DefaultTimeout
	}
	opts = opts.WithDefaults()
	r := &replica{fleet: f, log: log, opts: ropts, now: opts.Now, logger: opts.Logger,
		failures: writer.NewFailures(f, opts), name: randomName(), pending: make(map[string][]*writer.Request),
		alarm: make(chan struct{}, 1), folder: writer.NewFolder(f, opts), folded: newNonceSet(foldedNonces)}
	r.health.init(f, opts.Logger)
	return writer.NewWithBackend(f, r, opts)
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Commit appends the group; the follower answers its requests when it folds
// the entry, or the deadline does if that takes too long.
func (r *replica) Commit(group []*writer.Request) {
	// The group outlives the call (it is answered when folded): a copy,
	// since the writer reuses its slice.
	group, deadline := r.expire(slices.Clone(group))
	if len(group) == 0 {
		return
	}
	r.seq++
	nonce := fmt.Sprintf("%s/%d", r.name, r.seq)
	r.mu.Lock()
	r.pending[nonce] = group
	r.mu.Unlock()
	data, err := encodeEntry(&logEntry{Nonce: nonce, Commands: writer.Commands(group)})
	if err == nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err = r.log.Append(ctx, data, deadline.Add(-appendMargin(r.opts.Timeout)))
		cancel()
	}
	if err != nil {
		r.failed(nonce, err)
		return
	}
	time.AfterFunc(time.Until(deadline), func() { r.answerPending(nonce) })
}

// appendMargin is how much earlier than the request's own deadline the
// store must run an append: enough for its answer to come back in time, so
// that an append the store ran is not also answered 503.
func appendMargin(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 50*time.Millisecond), 250*time.Millisecond)
}

// expire answers 503 to the requests whose time ran out while they waited
// for the writer, and returns the others with the earliest deadline.
func (r *replica) expire(group []*writer.Request) ([]*writer.Request, time.Time) {
	now := time.Now()
	live := group[:0]
	var deadline time.Time
	for _, req := range group {
		d := req.Received().Add(r.opts.Timeout)
		if !d.After(now.Add(appendMargin(r.opts.Timeout))) {
			r.failures.Refuse(storage.ErrDeadline, req)
			continue
		}
		if deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
		live = append(live, req)
	}
	return live, deadline
}

// failed answers a group whose append failed, and tells the follower to
// look at the log when the store said it is broken.
func (r *replica) failed(nonce string, err error) {
	if errors.Is(err, storage.ErrBroken) {
		r.raiseAlarm()
	}
	if errors.Is(err, storage.ErrNotReplicated) {
		// The entry is in the log and will be folded; the sender retries,
		// and its retry is a duplicate. Its requests are answered 503 now.
		r.logger.Debug("Append not replicated in time", "err", err)
	}
	r.health.appendFailed(err)
	if group := r.take(nonce); group != nil {
		r.failures.Refuse(err, group...)
	}
}

// answerPending answers the requests of an entry the follower has not
// folded by their deadline: stored, outcome unknown.
func (r *replica) answerPending(nonce string) {
	group := r.take(nonce)
	if group == nil {
		return
	}
	r.logger.Warn("Events stored but not folded here in time; answered as pending",
		"requests", len(group), "waited", r.opts.Timeout)
	for _, req := range group {
		req.Answer(fleet.Result{Pending: len(req.Command().Events)}, nil)
	}
}

// take removes and returns the pending group of nonce: whoever takes it
// answers it, exactly once.
func (r *replica) take(nonce string) []*writer.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	group := r.pending[nonce]
	delete(r.pending, nonce)
	return group
}

func (r *replica) Claim(ctx context.Context, duty string, ttl time.Duration) bool {
	won, err := r.log.Claim(ctx, duty, ttl)
	if err != nil {
		r.logger.Debug("Claiming a duty failed", "duty", duty, "err", err)
	}
	return won
}

func (r *replica) Healthy() bool { return r.health.ok() }

func (r *replica) Close() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.saves.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for nonce, group := range r.pending {
		for _, req := range group {
			req.Answer(fleet.Result{}, writer.ErrClosed)
		}
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
