package simulate

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// LoadConfig says where and how hard to send.
type LoadConfig struct {
	// Target is the exporter's webhook URL.
	Target string
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
	Sent     int
	ByStatus map[int]int
	// Errors counts requests that got no HTTP answer at all.
	Errors  int
	Elapsed time.Duration
	// latencies of acknowledged (2xx) requests
	latencies []time.Duration
	// Applications sums up the acknowledged application events.
	Applications *AppTally
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

// Write prints the report for a person.
func (r *Report) Write(w io.Writer) {
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(w, "sent %d events in %.2fs: %d acknowledged (%.0f events/s), %d without answer\n",
		r.Sent, secs, r.Acked(), float64(r.Acked())/max(secs, 1e-9), r.Errors)
	fmt.Fprintf(w, "acknowledge latency: p50 %s p90 %s p99 %s max %s\n",
		r.Percentile(50), r.Percentile(90), r.Percentile(99), r.Percentile(100))
	codes := make([]int, 0, len(r.ByStatus))
	for c := range r.ByStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "status %d: %d\n", c, r.ByStatus[c])
	}
	r.Applications.Write(w)
}

// Run posts the generator's events to the target until the config or ctx
// ends the run, and reports what came back.
func Run(ctx context.Context, gen Source, cfg LoadConfig) *Report {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Pushgateway {
		cfg.Batch = 1 // one PUT per server state
	}
	if cfg.Client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = cfg.Concurrency
		cfg.Client = &http.Client{Timeout: 30 * time.Second, Transport: transport}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	senders := make([]*sender, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range senders {
		senders[i] = &sender{cfg: &cfg, queue: make(chan Event, max(16, cfg.Batch)), byStatus: map[int]int{}, tally: newAppTally()}
		wg.Go(senders[i].run)
	}
	start := time.Now()
	sent := dispatch(ctx, gen, cfg, senders, start)
	for _, s := range senders {
		close(s.queue)
	}
	wg.Wait()
	rep := &Report{Sent: sent, ByStatus: map[int]int{}, Elapsed: time.Since(start), Applications: newAppTally()}
	for _, s := range senders {
		rep.Applications.merge(s.tally)
		for c, n := range s.byStatus {
			rep.ByStatus[c] += n
		}
		rep.Errors += s.errors
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
	cfg       *LoadConfig
	queue     chan Event
	byStatus  map[int]int
	errors    int
	latencies []time.Duration
	tally     *AppTally
	// next is an event taken from the queue that could not join the batch
	// before it.
	next *Event
}

func (s *sender) run() {
	for {
		batch := s.batch()
		if len(batch) == 0 {
			return
		}
		code, took, err := send(s.cfg, batch)
		if err != nil {
			s.errors += len(batch)
			continue
		}
		s.byStatus[code] += len(batch)
		if code >= 200 && code < 300 {
			s.latencies = append(s.latencies, took)
			for i := range batch {
				s.tally.acked(&batch[i])
			}
		}
	}
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

func send(cfg *LoadConfig, batch []Event) (int, time.Duration, error) {
	ev := batch[0]
	method, url, payload, contentType := http.MethodPost, cfg.Target, body(batch, cfg.Batch > 1), "application/json"
	if cfg.Pushgateway {
		method, url, payload, contentType = http.MethodPut, strings.TrimSuffix(cfg.Target, "/")+ev.PushPath(), ev.PushBody(), "text/plain; version=0.0.4"
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(payload))
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
