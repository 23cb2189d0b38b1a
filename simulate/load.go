package simulate

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// LoadConfig says where and how hard to send.
type LoadConfig struct {
	// Target is the exporter's webhook URL.
	Target string
	// Targets, when set, are several webhook URLs (replicas behind no load
	// balancer): each sender posts to them in turn, one request each, a
	// retry going to the next. One application's events still come in
	// order, one request after the other.
	Targets []string
	// Concurrency is the number of senders; the events of one server always
	// go through the same sender, in order, as one LiveSwitch server would
	// send them.
	Concurrency int
	// Rate caps events per second over all senders; 0 sends as fast as the
	// target acknowledges.
	Rate float64
	// Count and Duration stop the run, whichever comes first; 0 is no limit
	// (but one of them, or a cancelled context, must end the run).
	Count    int
	Duration time.Duration
	// Header is added to every request (e.g. an Authorization token).
	Header http.Header
	// Pushgateway sends each event to a Pushgateway at Target instead: one
	// PUT of the server's state to the server's own group.
	Pushgateway bool
	Client      *http.Client
	// Batch posts up to this many consecutive events of one application
	// (or of the fleet) in one request, as a JSON array; 0 or 1 posts each
	// event alone.
	Batch int
	// Secrets sign the webhooks of the applications they name
	// (X-ApplicationSignature).
	Secrets map[string]string
	// Retry says how long and how often an event is retried; the zero
	// value never retries.
	Retry Retry
	// Logger tells when the target stops and starts answering again; nil
	// logs nothing.
	Logger *slog.Logger
}

// Source gives the events to send: a fleet's (Generator), applications'
// (AppGenerator), or both (Interleave).
type Source interface{ Next() Event }

// Interleave draws from the fleet and the applications in turn: one server
// event, then appsPerServer application events.
func Interleave(fleet, apps Source, appsPerServer int) Source {
	return &interleaved{fleet: fleet, apps: apps, every: appsPerServer + 1}
}

type interleaved struct {
	fleet, apps Source
	every, n    int
}

func (i *interleaved) Next() Event {
	defer func() { i.n++ }()
	if i.n%i.every == 0 {
		return i.fleet.Next()
	}
	return i.apps.Next()
}

// Report sums up a run.
type Report struct {
	// Sent counts the events handed to the senders; each ends acknowledged,
	// rejected, lost, or undelivered when the run was stopped.
	Sent int
	// ByStatus counts events by the status of their last answer.
	ByStatus map[int]int
	// Rejected counts events answered with a 4xx other than 429: a bad
	// request, not retried.
	Rejected int
	// Retries counts the re-sends of an event, and RetriedFor why the
	// attempt before each failed ("no answer", "status 503", ...).
	Retries    int
	RetriedFor map[string]int
	// Lost counts events still without a 2xx when their retries ran out,
	// and Undelivered those without one when the run was stopped.
	Lost, Undelivered int
	// RetryFor is the retry bound of the run, for the report.
	RetryFor time.Duration
	Elapsed  time.Duration
	// latencies of acknowledged (2xx) requests
	latencies []time.Duration
	// Applications sums up the acknowledged application events.
	Applications *AppTally
	// Fleet is each server as its acknowledged events left it, by key
	// ("<origin>/<id>"): what the target must show if nothing was lost.
	Fleet map[string]ServerState
}

// ServerState is a simulated server's state as an exporter names it.
type ServerState struct {
	Origin, ID, State string
	ms                int64
}

// Acked is the number of events the target acknowledged with a 2xx.
func (r *Report) Acked() int {
	n := 0
	for code, c := range r.ByStatus {
		if code >= 200 && code < 300 {
			n += c
		}
	}
	return n
}

// Percentile returns the p-th percentile (0..100) of acknowledge latency.
func (r *Report) Percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * p / 100)
	return r.latencies[i]
}

// Write prints the report for a person. Its first line says what became of
// the events:
//
//	sent N events in Ds: A acknowledged (R events/s), J rejected, L lost
//	retries: N (no answer=N status 503=N ...)
//	lost: L (G still failing after retrying for D, U undelivered when stopped)
func (r *Report) Write(w io.Writer) {
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(w, "sent %d events in %.2fs: %d acknowledged (%.0f events/s), %d rejected, %d lost\n",
		r.Sent, secs, r.Acked(), float64(r.Acked())/max(secs, 1e-9), r.Rejected, r.Lost+r.Undelivered)
	fmt.Fprintf(w, "retries: %d%s\n", r.Retries, parenthesised(pairs(r.RetriedFor)))
	fmt.Fprintf(w, "lost: %d (%d still failing after retrying for up to %s, %d undelivered when stopped)\n",
		r.Lost+r.Undelivered, r.Lost, r.RetryFor, r.Undelivered)
	fmt.Fprintf(w, "acknowledge latency: p50 %s p90 %s p99 %s max %s\n",
		r.Percentile(50), r.Percentile(90), r.Percentile(99), r.Percentile(100))
	for _, c := range slices.Sorted(maps.Keys(r.ByStatus)) {
		fmt.Fprintf(w, "status %d: %d\n", c, r.ByStatus[c])
	}
	if len(r.Fleet) > 0 {
		states := map[string]int{}
		for _, s := range r.Fleet {
			states[s.State]++
		}
		fmt.Fprintf(w, "fleet as acknowledged: %d servers:%s\n", len(r.Fleet), pairs(states))
	}
	r.Applications.Write(w)
}

func parenthesised(s string) string {
	if s == "" {
		return ""
	}
	return " (" + strings.TrimPrefix(s, " ") + ")"
}

// Run posts the generator's events to the target until the config or ctx
// ends the run, and reports what came back. Count and Duration end the
// generation, after which what was generated is still delivered (retries
// included); ctx ends the run at once, what was not acknowledged by then
// being reported undelivered.
func Run(ctx context.Context, gen Source, cfg LoadConfig) *Report {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if len(cfg.Targets) == 0 {
		cfg.Targets = []string{cfg.Target}
	}
	if cfg.Pushgateway {
		cfg.Batch = 1 // one PUT per server state
	}
	if cfg.Client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = cfg.Concurrency
		cfg.Client = &http.Client{Timeout: 30 * time.Second, Transport: transport}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	generating := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		generating, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	senders := make([]*sender, cfg.Concurrency)
	var wg sync.WaitGroup
	health := newTargetHealth(cfg.Logger)
	for i := range senders {
		senders[i] = &sender{cfg: &cfg, ctx: ctx, health: health, queue: make(chan Event, max(16, cfg.Batch)),
			byStatus: map[int]int{}, retriedFor: map[string]int{}, tally: newAppTally(), fleet: map[string]ServerState{}}
		wg.Go(senders[i].run)
	}
	start := time.Now()
	sent := dispatch(generating, gen, cfg, senders, start)
	for _, s := range senders {
		close(s.queue)
	}
	wg.Wait()
	return report(senders, sent, cfg.Retry.For, time.Since(start))
}

// report sums up the senders' counts.
func report(senders []*sender, sent int, retryFor, elapsed time.Duration) *Report {
	rep := &Report{Sent: sent, ByStatus: map[int]int{}, RetriedFor: map[string]int{}, RetryFor: retryFor, Elapsed: elapsed,
		Applications: newAppTally(), Fleet: map[string]ServerState{}}
	for _, s := range senders {
		rep.Applications.merge(s.tally)
		for c, n := range s.byStatus {
			rep.ByStatus[c] += n
		}
		for why, n := range s.retriedFor {
			rep.RetriedFor[why] += n
		}
		maps.Copy(rep.Fleet, s.fleet) // a server's events all go through one sender
		rep.Rejected += s.rejected
		rep.Retries += s.retries
		rep.Lost += s.lost
		rep.Undelivered += s.undelivered
		rep.latencies = append(rep.latencies, s.latencies...)
	}
	slices.Sort(rep.latencies)
	return rep
}

func dispatch(ctx context.Context, gen Source, cfg LoadConfig, senders []*sender, start time.Time) int {
	sent := 0
	for cfg.Count == 0 || sent < cfg.Count {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return sent
				}
			}
		}
		ev := gen.Next()
		ev.queued = time.Now()
		h := fnv.New32a()
		_, _ = h.Write([]byte(ev.Key))
		select {
		case senders[h.Sum32()%uint32(len(senders))].queue <- ev:
			sent++
		case <-ctx.Done():
			return sent
		}
	}
	return sent
}

type sender struct {
	cfg *LoadConfig
	// ctx stops the run: no more attempts once it is done.
	ctx        context.Context
	health     *targetHealth
	queue      chan Event
	byStatus   map[int]int
	retriedFor map[string]int
	rejected   int
	retries    int
	lost       int
	// undelivered counts events without a 2xx when ctx was done.
	undelivered int
	latencies   []time.Duration
	tally       *AppTally
	fleet       map[string]ServerState
	// next is an event taken from the queue that could not join the batch
	// before it.
	next *Event
	// turn counts the sender's requests, to take the targets in turn.
	turn int
}

func (s *sender) run() {
	for {
		batch := s.batch()
		if len(batch) == 0 {
			return
		}
		if s.ctx.Err() != nil {
			s.undelivered += len(batch)
			continue
		}
		s.deliver(batch)
	}
}

// deliver posts batch until it is answered with anything but a 5xx or a
// 429, the retries run out, or the run is stopped. The sender's next events
// wait meanwhile, so that each server's events still arrive in order.
func (s *sender) deliver(batch []Event) {
	deadline := batch[0].queued.Add(s.cfg.Retry.For)
	for attempt := 0; ; attempt++ {
		target := s.cfg.Targets[s.turn%len(s.cfg.Targets)]
		s.turn++
		code, took, err := send(s.ctx, s.cfg, target, batch)
		if err != nil && s.ctx.Err() != nil { // cut by the stop
			s.undelivered += len(batch)
			return
		}
		why := ""
		switch {
		case err != nil:
			why = "no answer"
		case code >= 500 || code == http.StatusTooManyRequests:
			why = fmt.Sprintf("status %d", code)
		default:
			s.answered(batch, code, took)
			return
		}
		wait := s.cfg.Retry.wait(attempt)
		if time.Now().Add(wait).After(deadline) {
			s.gaveUp(batch, code, why, err)
			return
		}
		back := s.health.failing(why, err, wait)
		select {
		case <-time.After(wait):
		case <-back: // another sender got an answer: the target is back
		case <-s.ctx.Done():
			s.undelivered += len(batch)
			return
		}
		s.retries += len(batch)
		s.retriedFor[why] += len(batch)
	}
}

// answered counts batch, answered with code (no 5xx nor 429): acknowledged
// or rejected.
func (s *sender) answered(batch []Event, code int, took time.Duration) {
	s.health.answered()
	s.byStatus[code] += len(batch)
	if code < 200 || code >= 300 {
		s.rejected += len(batch)
		return
	}
	s.latencies = append(s.latencies, took)
	for i := range batch {
		s.tally.acked(&batch[i])
		if batch[i].app == nil {
			st := batch[i].state
			if old, ok := s.fleet[batch[i].Key]; !ok || old.ms <= batch[i].ms {
				s.fleet[batch[i].Key] = ServerState{Origin: st.origin, ID: st.id, State: st.stateName(), ms: batch[i].ms}
			}
		}
	}
}

// gaveUp counts batch as lost after its last failed attempt.
func (s *sender) gaveUp(batch []Event, code int, why string, err error) {
	s.lost += len(batch)
	if code != 0 {
		s.byStatus[code] += len(batch)
	}
	s.health.lost(why, err, len(batch))
}

// batch takes the next events to post together: up to cfg.Batch of those
// waiting, consecutive and of one application (or all of the fleet), since
// each application signs its own webhooks. It is empty once the queue is
// closed and drained.
func (s *sender) batch() []Event {
	var batch []Event
	if s.next != nil {
		batch, s.next = append(batch, *s.next), nil
	} else if ev, ok := <-s.queue; ok {
		batch = append(batch, ev)
	} else {
		return nil
	}
	for len(batch) < s.cfg.Batch {
		select {
		case ev, ok := <-s.queue:
			if !ok {
				return batch
			}
			if ev.batchKey() != batch[0].batchKey() {
				s.next = &ev
				return batch
			}
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// batchKey says which events may share a request.
func (e Event) batchKey() string {
	if e.app != nil {
		return e.Key
	}
	return "fleet"
}

// body is what posting batch sends: an event alone, or a JSON array.
func body(batch []Event, batched bool) []byte {
	if !batched {
		return batch[0].Body
	}
	parts := make([][]byte, len(batch))
	for i, ev := range batch {
		parts[i] = ev.Body
	}
	return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
}

func send(ctx context.Context, cfg *LoadConfig, target string, batch []Event) (int, time.Duration, error) {
	ev := batch[0]
	method, url, payload, contentType := http.MethodPost, target, body(batch, cfg.Batch > 1), "application/json"
	if cfg.Pushgateway {
		method, url, payload, contentType = http.MethodPut, strings.TrimSuffix(target, "/")+ev.PushPath(), ev.PushBody(), "text/plain; version=0.0.4"
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(payload))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	if ev.app != nil && cfg.Secrets[ev.app.app] != "" {
		req.Header.Set(appsig.Header, appsig.Sign(payload, cfg.Secrets[ev.app.app]))
	}
	start := time.Now()
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}
