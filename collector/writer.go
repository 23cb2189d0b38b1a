package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// maxGroup bounds how many requests share one commit.
const maxGroup = 1024

// errorLogInterval spaces the log lines of a failing store, which every
// webhook would otherwise repeat.
const errorLogInterval = 10 * time.Second

// limitLogInterval spaces the log lines about evictions and refusals, which
// a flood of new ids would otherwise repeat for every event.
const limitLogInterval = time.Minute

// WriterOptions configure a Writer.
type WriterOptions struct {
	Decode DecodeOptions
	Limits Limits
	// Now is the exporter's clock; tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Writer is the fleet's single writer. Every change to the fleet passes
// through it as a command: it takes the commands of concurrent requests as
// one group and hands the group to its backend, which makes the group
// durable before anything is published or acknowledged. So an event is
// acknowledged only once it is durable, a failed commit leaves nothing
// behind, and durability costs one commit per group rather than one per
// request.
//
// The groups are committed by the requests themselves, one at a time (see
// combiner): a request that finds no commit under way commits the waiting
// group, its own included, so that an isolated webhook pays no hand-off to
// another goroutine, and concurrent ones share a commit.
type Writer struct {
	fleet   *Fleet
	backend backend
	opts    WriterOptions
	queue   combiner
	logger  *slog.Logger
	limits  limitLog
	errLog  *ratelog.Limiter
}

// backend is where a Writer's groups of commands go: the fleet's own store
// (local), or a log shared by replicas (replica).
type backend interface {
	// restore loads the fleet; it must finish before the exporter is ready.
	restore(ctx context.Context) error
	// commit makes a group durable and applies it; it answers every request
	// of the group, now or later.
	commit(group []*request)
	// claim reports whether this exporter should run a periodic duty now;
	// replicas take turns.
	claim(ctx context.Context, duty string, ttl time.Duration) bool
	// healthy reports whether the store accepts writes.
	healthy() bool
	close()
}

// request is one unit of work for the writer.
type request struct {
	cmd    command
	result chan outcomeOrErr
	// received is when the request reached the writer, by the real clock:
	// a replica answers it within its timeout from then.
	received time.Time
}

type outcomeOrErr struct {
	res Result
	err error
	// commit tells a waiting request to commit the groups that wait, its
	// own included, instead of an answer.
	commit bool
}

func (r *request) answer(res Result, err error) { r.result <- outcomeOrErr{res: res, err: err} }

// requests are reused: a webhook allocates none.
var requests = sync.Pool{New: func() any { return &request{result: make(chan outcomeOrErr, 1)} }}

func newRequest(cmd command) *request {
	r := requests.Get().(*request)
	r.cmd, r.received = cmd, time.Now()
	return r
}

// release returns a request whose answer was read; no one else holds it.
func (r *request) release() {
	r.cmd = command{}
	requests.Put(r)
}

func commands(group []*request) []*command {
	cmds := make([]*command, len(group))
	for i, r := range group {
		cmds[i] = &r.cmd
	}
	return cmds
}

// NewWriter starts the writer of fleet on its own store. store may be nil
// for a fleet kept in memory only. Call Restore before accepting events and
// Close at the end.
func NewWriter(fleet *Fleet, store storage.Store, opts WriterOptions) *Writer {
	w := newWriter(fleet, &opts)
	w.backend = &local{w: w, store: store}
	fleet.SetStorageUp(true) // opened, hence writable until a commit fails
	return w
}

func newWriter(fleet *Fleet, opts *WriterOptions) *Writer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fleet.SetLimit(opts.Limits.MaxServers)
	w := &Writer{
		fleet: fleet, opts: *opts, logger: opts.Logger,
		errLog: ratelog.New(errorLogInterval, opts.Now),
	}
	w.queue.init(func(group []*request) { w.backend.commit(group) })
	return w
}

// Restore loads the fleet from the store. It must finish before the exporter
// reports ready; a record that cannot be read is an error, never skipped, so
// that the exporter does not silently start with part of its fleet.
func (w *Writer) Restore(ctx context.Context) error { return w.backend.restore(ctx) }

// Healthy reports whether the store accepts writes now. A replica whose
// shared store is unreachable is not healthy until it has caught up again.
func (w *Writer) Healthy() bool { return w.backend.healthy() }

// Ingest decodes a webhook body and applies its events. It returns an
// *InvalidError for a malformed body (nothing applied), an error wrapping
// ErrStorage when the store failed (nothing applied), or the outcome of every
// event once they are all durable.
func (w *Writer) Ingest(ctx context.Context, body []byte) (Result, error) {
	now := w.opts.Now()
	events, err := Decode(body, w.opts.Decode, now)
	if err != nil {
		var invalid *InvalidError
		if errors.As(err, &invalid) {
			delta := Stats{LastReceivedMs: now.UnixMilli()}
			delta.Outcomes[OutcomeInvalid] = uint64(invalid.Events)
			w.fleet.Count(&delta)
		}
		return Result{}, err
	}
	return w.submit(ctx, command{Events: events, ReceivedMs: now.UnixMilli()})
}

// Forget removes one server at once (an operator retiring a machine that
// never sent stopped). It reports whether the server was tracked.
func (w *Writer) Forget(ctx context.Context, k Key) (bool, error) {
	res, err := w.submit(ctx, command{Forget: &k})
	return res.Forgotten > 0, err
}

// Sweep forgets the servers whose retention or staleness has passed by the
// writer's clock; Run calls it periodically, tests call it directly.
func (w *Writer) Sweep(ctx context.Context) (int, error) {
	res, err := w.submit(ctx, command{SweepMs: w.opts.Now().UnixMilli()})
	return res.Forgotten, err
}

// RunSweeper calls Sweep at the interval the limits call for until ctx ends.
// Replicas sharing a store take turns: one sweep per interval sweeps for all.
func (w *Writer) RunSweeper(ctx context.Context) {
	interval := w.opts.Limits.sweepInterval()
	if interval == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !w.backend.claim(ctx, "sweep", interval*9/10) {
				continue
			}
			if _, err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
				w.logger.Warn("Forgetting expired servers failed; will retry", "err", err)
			}
		}
	}
}

// submit hands cmd to the writer and waits for its outcome. A request whose
// context ended before it was taken returns ctx.Err(): nothing was applied.
// Once taken, it waits for the outcome even if the client went away, so
// that what is logged is what happened; every request taken is answered,
// and promptly.
func (w *Writer) submit(ctx context.Context, cmd command) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	r := newRequest(cmd)
	out, ok := w.queue.submit(r)
	r.release()
	if !ok {
		return Result{}, ErrClosed
	}
	return out.res, out.err
}

// Close stops the writer once the groups taken are committed. Calling it
// again does nothing.
func (w *Writer) Close() {
	if w.queue.close() {
		w.backend.close()
	}
}

// publish makes a folded group visible and reports what the limits did.
func (w *Writer) publish(st *Staging) {
	w.fleet.Publish(st)
	w.logLimits(st.Stats())
}

// limitLog gathers evictions and refusals between two log lines.
type limitLog struct {
	last             time.Time
	evicted, refused uint64
}

// logLimits reports evictions and refusals, at most once a minute.
func (w *Writer) logLimits(delta *Stats) {
	l := &w.limits
	l.evicted += delta.Forgotten[ForgetEvicted]
	l.refused += delta.Outcomes[OutcomeRefused]
	if l.evicted+l.refused == 0 || w.opts.Now().Sub(l.last) < limitLogInterval {
		return
	}
	w.logger.Warn("Fleet is at --server.max: stopped servers evicted, new servers refused",
		"max", w.opts.Limits.MaxServers, "evicted", l.evicted, "refused", l.refused, "since", l.last)
	l.last, l.evicted, l.refused = w.opts.Now(), 0, 0
}

// recordKey names a server's record in the store. Origins never hold a '/',
// so the key is unambiguous whatever the id holds.
func recordKey(k Key) string { return k.Origin + "/" + k.ID }

// storageFailed counts and logs a group the store refused, and returns the
// error its requests are answered with.
func (w *Writer) storageFailed(err error, requests int) *StorageError {
	w.fleet.Count(&Stats{StorageErrors: 1})
	w.fleet.SetStorageUp(false)
	w.errLog.Log(w.logger, slog.LevelError, "Storing fleet changes failed; nothing applied, webhooks answered 503",
		"err", err, "requests", requests)
	return storageError(err)
}
