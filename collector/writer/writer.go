package writer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
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

// Options configure a Writer.
type Options struct {
	Decode event.DecodeOptions
	Limits fleet.Limits
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
	fleet   *fleet.Fleet
	backend Backend
	opts    Options
	queue   combiner
	logger  *slog.Logger
}

// WithDefaults returns o with what it leaves unset filled in as the writer
// runs it: the real clock, and a logger that discards.
func (o Options) WithDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// New starts the writer of fleet f on its own store. store may be nil
// for a fleet kept in memory only. Call Restore before accepting events and
// Close at the end.
func New(f *fleet.Fleet, store storage.Store, opts Options) *Writer {
	w := NewWithBackend(f, newLocal(f, store, opts), opts)
	f.SetStorageUp(true) // opened, hence writable until a commit fails
	return w
}

// NewWithBackend starts the writer of fleet f with backend b, which makes its
// groups durable and folds them (a replica: see collector/replica). Call
// Restore before accepting events and Close at the end.
func NewWithBackend(f *fleet.Fleet, b Backend, opts Options) *Writer {
	opts = opts.WithDefaults()
	f.SetLimit(opts.Limits.MaxServers)
	w := &Writer{fleet: f, backend: b, opts: opts, logger: opts.Logger}
	w.queue.init(b.Commit)
	return w
}

// Restore loads the fleet from the store. It must finish before the exporter
// reports ready; a record that cannot be read is an error, never skipped, so
// that the exporter does not silently start with part of its fleet.
func (w *Writer) Restore(ctx context.Context) error { return w.backend.Restore(ctx) }

// Healthy reports whether the store accepts writes now. A replica whose
// shared store is unreachable is not healthy until it has caught up again.
func (w *Writer) Healthy() bool { return w.backend.Healthy() }

// Ingest decodes a webhook body and applies its events. It returns an
// *InvalidError for a malformed body (nothing applied), an error wrapping
// ErrStorage when the store failed (nothing applied), or the outcome of every
// event once they are all durable.
func (w *Writer) Ingest(ctx context.Context, body []byte) (fleet.Result, error) {
	now := w.opts.Now()
	events, err := event.Decode(body, w.opts.Decode, now)
	if err != nil {
		var invalid *event.InvalidError
		if errors.As(err, &invalid) {
			delta := fleet.Stats{LastReceivedMs: now.UnixMilli()}
			delta.Outcomes[fleet.OutcomeInvalid] = uint64(invalid.Events)
			w.fleet.Count(&delta)
		}
		return fleet.Result{}, err
	}
	return w.submit(ctx, Command{Events: events, ReceivedMs: now.UnixMilli()})
}

// Forget removes one server at once (an operator retiring a machine that
// never sent stopped). It reports whether the server was tracked.
func (w *Writer) Forget(ctx context.Context, k fleet.Key) (bool, error) {
	res, err := w.submit(ctx, Command{Forget: &k})
	return res.Forgotten > 0, err
}

// Sweep forgets the servers whose retention or staleness has passed by the
// writer's clock; Run calls it periodically, tests call it directly.
func (w *Writer) Sweep(ctx context.Context) (int, error) {
	res, err := w.submit(ctx, Command{SweepMs: w.opts.Now().UnixMilli()})
	return res.Forgotten, err
}

// RunSweeper calls Sweep at the interval the limits call for until ctx ends.
// Replicas sharing a store take turns: one sweep per interval sweeps for all.
func (w *Writer) RunSweeper(ctx context.Context) {
	interval := w.opts.Limits.SweepInterval()
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
			if !w.backend.Claim(ctx, "sweep", interval*9/10) {
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
func (w *Writer) submit(ctx context.Context, cmd Command) (fleet.Result, error) {
	if err := ctx.Err(); err != nil {
		return fleet.Result{}, err
	}
	r := newRequest(cmd)
	out, ok := w.queue.submit(r)
	r.release()
	if !ok {
		return fleet.Result{}, ErrClosed
	}
	return out.res, out.err
}

// Close stops the writer once the groups taken are committed. Calling it
// again does nothing.
func (w *Writer) Close() {
	if w.queue.close() {
		w.backend.Close()
	}
}
