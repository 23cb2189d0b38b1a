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
type Writer struct {
	fleet   *Fleet
	backend backend
	opts    WriterOptions
	reqs    chan *request
	stop    chan struct{}
	done    chan struct{}
	closed  sync.Once
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
}

func (r *request) answer(res Result, err error) { r.result <- outcomeOrErr{res: res, err: err} }

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
	fleet.setStorageUp(true) // opened, hence writable until a commit fails
	go w.run()
	return w
}

func newWriter(fleet *Fleet, opts *WriterOptions) *Writer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fleet.setLimit(opts.Limits.MaxServers)
	return &Writer{
		fleet: fleet, opts: *opts, logger: opts.Logger,
		reqs: make(chan *request), stop: make(chan struct{}), done: make(chan struct{}),
		errLog: ratelog.New(errorLogInterval, opts.Now),
	}
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
			w.fleet.count(&delta)
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
// context ends before the writer took it returns ctx.Err(): nothing was
// applied. Once taken, it waits for the outcome even if the client went
// away, so that what is logged is what happened; the writer answers every
// request it took, and promptly.
func (w *Writer) submit(ctx context.Context, cmd command) (Result, error) {
	r := &request{cmd: cmd, result: make(chan outcomeOrErr, 1), received: time.Now()}
	select {
	case w.reqs <- r:
	case <-w.stop:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	out := <-r.result
	return out.res, out.err
}

// Close stops the writer once the group being committed is done. Calling it
// again does nothing.
func (w *Writer) Close() {
	w.closed.Do(func() {
		close(w.stop)
		<-w.done
		w.backend.close()
	})
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case first := <-w.reqs:
			w.backend.commit(w.gather(first))
		}
	}
}

// gather takes every request already waiting, up to maxGroup, so that they
// share one commit.
func (w *Writer) gather(first *request) []*request {
	group := []*request{first}
	for len(group) < maxGroup {
		select {
		case r := <-w.reqs:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// publish makes a folded group visible and reports what the limits did.
func (w *Writer) publish(st *staging, delta *Stats) {
	w.fleet.publishObserved(st.changes, st.applied, delta, st.gateway)
	w.logLimits(delta)
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
	w.fleet.count(&Stats{StorageErrors: 1})
	w.fleet.setStorageUp(false)
	w.errLog.Log(w.logger, slog.LevelError, "Storing fleet changes failed; nothing applied, webhooks answered 503",
		"err", err, "requests", requests)
	return storageError(err)
}
