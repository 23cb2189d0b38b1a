package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// ErrStorage wraps a failure of the store: nothing was applied and the
// sender should retry (the HTTP layer answers 503).
var ErrStorage = errors.New("storage unavailable")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("fleet writer is closed")

// maxGroup bounds how many requests share one commit.
const maxGroup = 1024

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
// through it: it applies the work of concurrent requests one after another,
// writes the changes of all of them to the store in one commit, and only
// then publishes them and answers the requests. So an event is acknowledged
// only once it is durable, a failed commit leaves nothing behind, and
// durability costs one commit per group rather than one per request.
type Writer struct {
	fleet  *Fleet
	store  storage.Store // nil: in memory only
	opts   WriterOptions
	reqs   chan *request
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	logger *slog.Logger
	// owned by the run goroutine
	limitLog struct {
		last             time.Time
		evicted, refused uint64
	}
}

// request is one unit of work for the writer: op stages its changes.
type request struct {
	op         func(st *staging) Result
	receivedMs int64
	result     chan outcomeOrErr
}

type outcomeOrErr struct {
	res Result
	err error
}

// Result tells what became of the work of one request.
type Result struct {
	// Outcomes counts the request's events by outcome.
	Outcomes [numOutcomes]int
	// Forgotten counts the servers the request forgot.
	Forgotten int
}

// Total is the number of events the request held.
func (r Result) Total() int {
	n := 0
	for _, c := range r.Outcomes {
		n += c
	}
	return n
}

// AllApplied reports whether every event of the request changed the fleet.
func (r Result) AllApplied() bool { return r.Outcomes[OutcomeApplied] == r.Total() }

// String lists the non-zero outcomes, e.g. "applied=2 duplicate=1".
func (r Result) String() string {
	var parts []string
	for i, n := range r.Outcomes {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", Outcome(i), n))
		}
	}
	return strings.Join(parts, " ")
}

// NewWriter starts the writer of fleet. store may be nil for a fleet kept in
// memory only. Call Restore before accepting events and Close at the end.
func NewWriter(fleet *Fleet, store storage.Store, opts WriterOptions) *Writer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{
		fleet: fleet, store: store, opts: opts, logger: opts.Logger,
		reqs: make(chan *request), stop: make(chan struct{}), done: make(chan struct{}),
	}
	fleet.setLimit(opts.Limits.MaxServers)
	go w.run()
	return w
}

// Restore loads the fleet from the store. It must finish before the exporter
// reports ready; a record that cannot be read is an error, never skipped, so
// that the exporter does not silently start with part of its fleet.
func (w *Writer) Restore(ctx context.Context) error {
	if w.store == nil {
		return nil
	}
	servers := make(map[Key]*Server)
	err := w.store.Load(ctx, func(key string, value []byte) error {
		var s Server
		if err := json.Unmarshal(value, &s); err != nil || s.Info.ID == "" || recordKey(s.Key()) != key {
			return fmt.Errorf("storage record %q is not a valid server record", key)
		}
		servers[s.Key()] = &s
		return nil
	})
	if err != nil {
		return err
	}
	w.fleet.publish(servers, &Stats{})
	return nil
}

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
	return w.submit(ctx, now, func(st *staging) Result {
		var res Result
		for i := range events {
			res.Outcomes[st.apply(&events[i])]++
		}
		return res
	})
}

// Forget removes one server at once (an operator retiring a machine that
// never sent stopped). It reports whether the server was tracked.
func (w *Writer) Forget(ctx context.Context, k Key) (bool, error) {
	res, err := w.submit(ctx, time.Time{}, func(st *staging) Result {
		return Result{Forgotten: boolInt(st.forget(k, ForgetDeleted))}
	})
	return res.Forgotten > 0, err
}

// Sweep forgets the servers whose retention or staleness has passed by the
// writer's clock; Run calls it periodically, tests call it directly.
func (w *Writer) Sweep(ctx context.Context) (int, error) {
	now := w.opts.Now()
	res, err := w.submit(ctx, time.Time{}, func(st *staging) Result {
		return Result{Forgotten: st.sweep(now)}
	})
	return res.Forgotten, err
}

// RunSweeper calls Sweep at the interval the limits call for until ctx ends.
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
			if _, err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
				w.logger.Warn("Forgetting expired servers failed; will retry", "err", err)
			}
		}
	}
}

func (w *Writer) submit(ctx context.Context, received time.Time, op func(*staging) Result) (Result, error) {
	r := &request{op: op, result: make(chan outcomeOrErr, 1)}
	if !received.IsZero() {
		r.receivedMs = received.UnixMilli()
	}
	select {
	case w.reqs <- r:
	case <-w.stop:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case out := <-r.result:
		return out.res, out.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops the writer once the group being committed is done. Calling it
// again does nothing.
func (w *Writer) Close() {
	w.closed.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case first := <-w.reqs:
			w.commit(w.gather(first))
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

func (w *Writer) commit(group []*request) {
	st := newStaging(w.fleet, w.opts.Limits)
	results := make([]Result, len(group))
	delta := Stats{}
	for i, r := range group {
		results[i] = r.op(st)
		for o, n := range results[i].Outcomes {
			delta.Outcomes[o] += uint64(n)
		}
		delta.LastReceivedMs = max(delta.LastReceivedMs, r.receivedMs)
	}
	if err := w.persist(st.changes); err != nil {
		w.fleet.count(&Stats{StorageErrors: 1})
		w.logger.Error("Storing fleet changes failed; nothing applied", "err", err, "requests", len(group))
		for _, r := range group {
			r.result <- outcomeOrErr{err: fmt.Errorf("%w: %w", ErrStorage, err)}
		}
		return
	}
	delta.Forgotten = st.forgotten
	w.fleet.publish(st.changes, &delta)
	w.logLimits(&delta)
	for i, r := range group {
		r.result <- outcomeOrErr{res: results[i]}
	}
}

// logLimits reports evictions and refusals, at most once a minute.
func (w *Writer) logLimits(delta *Stats) {
	l := &w.limitLog
	l.evicted += delta.Forgotten[ForgetEvicted]
	l.refused += delta.Outcomes[OutcomeRefused]
	if l.evicted+l.refused == 0 || w.opts.Now().Sub(l.last) < limitLogInterval {
		return
	}
	w.logger.Warn("Fleet is at --server.max: stopped servers evicted, new servers refused",
		"max", w.opts.Limits.MaxServers, "evicted", l.evicted, "refused", l.refused, "since", l.last)
	l.last, l.evicted, l.refused = w.opts.Now(), 0, 0
}

func (w *Writer) persist(changes map[Key]*Server) error {
	if w.store == nil || len(changes) == 0 {
		return nil
	}
	b := &storage.Batch{Puts: make(map[string][]byte, len(changes))}
	for k, s := range changes {
		if s == nil {
			b.Deletes = append(b.Deletes, recordKey(k))
			continue
		}
		value, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Puts[recordKey(k)] = value
	}
	return w.store.Commit(context.Background(), b)
}

// recordKey names a server's record in the store. Origins never hold a '/',
// so the key is unambiguous whatever the id holds.
func recordKey(k Key) string { return k.Origin + "/" + k.ID }
