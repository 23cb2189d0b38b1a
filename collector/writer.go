package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// ErrStorage wraps a failure of the store: the events were not applied and
// the sender should retry (the HTTP layer answers 503).
var ErrStorage = errors.New("storage unavailable")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("fleet writer is closed")

// maxGroup bounds how many requests share one commit.
const maxGroup = 1024

// WriterOptions configure a Writer.
type WriterOptions struct {
	Decode DecodeOptions
	// Now is the exporter's clock; tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Writer is the fleet's single writer. Every change to the fleet passes
// through it: it applies the events of concurrent webhooks one after another
// with Step, writes the changes of all of them to the store in one commit,
// and only then publishes them and acknowledges the senders. So an event is
// acknowledged only once it is durable, a failed commit leaves nothing
// behind, and durability costs one commit per group rather than per request.
type Writer struct {
	fleet  *Fleet
	store  storage.Store // nil: in memory only
	opts   WriterOptions
	reqs   chan *request
	stop   chan struct{}
	done   chan struct{}
	logger *slog.Logger
}

type request struct {
	events     []Event
	receivedMs int64
	result     chan outcomeOrErr
}

type outcomeOrErr struct {
	res Result
	err error
}

// Result tells what became of the events of one request.
type Result struct {
	Outcomes [numOutcomes]int
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
		if err := json.Unmarshal(value, &s); err != nil {
			return fmt.Errorf("record %q: %w", key, err)
		}
		servers[s.Key()] = &s
		return nil
	})
	if err != nil {
		return err
	}
	w.fleet.publish(servers, [numOutcomes]uint64{}, 0)
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
			w.fleet.countInvalid(invalid.Events, now.UnixMilli())
		}
		return Result{}, err
	}
	return w.submit(ctx, &request{events: events, receivedMs: now.UnixMilli()})
}

func (w *Writer) submit(ctx context.Context, r *request) (Result, error) {
	r.result = make(chan outcomeOrErr, 1)
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

// Close stops the writer once the group being committed is done.
func (w *Writer) Close() {
	close(w.stop)
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
	st := newStaging(w.fleet)
	results := make([]Result, len(group))
	var receivedMs int64
	for i, r := range group {
		for j := range r.events {
			results[i].Outcomes[st.apply(&r.events[j])]++
		}
		receivedMs = max(receivedMs, r.receivedMs)
	}
	if err := w.persist(st.changes); err != nil {
		w.fleet.countStorageError()
		w.logger.Error("Storing fleet changes failed; webhooks answered 503", "err", err, "requests", len(group))
		for _, r := range group {
			r.result <- outcomeOrErr{err: fmt.Errorf("%w: %w", ErrStorage, err)}
		}
		return
	}
	var outcomes [numOutcomes]uint64
	for _, res := range results {
		for i, n := range res.Outcomes {
			outcomes[i] += uint64(n)
		}
	}
	w.fleet.publish(st.changes, outcomes, receivedMs)
	for i, r := range group {
		r.result <- outcomeOrErr{res: results[i]}
	}
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

// staging holds the changes of one group on top of the committed fleet
// until they are durable; a nil entry marks a server to forget.
type staging struct {
	fleet   *Fleet
	changes map[Key]*Server
}

func newStaging(f *Fleet) *staging {
	return &staging{fleet: f, changes: make(map[Key]*Server)}
}

func (st *staging) get(k Key) *Server {
	if s, ok := st.changes[k]; ok {
		return s
	}
	return st.fleet.lookup(k)
}

func (st *staging) apply(ev *Event) Outcome {
	if ev.Kind == KindIgnored || ev.Server.ID == "" {
		return OutcomeIgnored
	}
	k := ev.Key()
	prev := st.get(k)
	next, outcome := Step(prev, ev)
	if next != prev {
		st.changes[k] = next
	}
	return outcome
}
