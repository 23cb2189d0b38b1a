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
}

// Run posts the generator's events to the target until the config or ctx
// ends the run, and reports what came back.
func Run(ctx context.Context, gen *Generator, cfg LoadConfig) *Report {
	cfg.Concurrency = max(cfg.Concurrency, 1)
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
		senders[i] = &sender{cfg: &cfg, queue: make(chan Event, 16), byStatus: map[int]int{}}
		wg.Go(senders[i].run)
	}
	start := time.Now()
	sent := dispatch(ctx, gen, cfg, senders, start)
	for _, s := range senders {
		close(s.queue)
	}
	wg.Wait()
	rep := &Report{Sent: sent, ByStatus: map[int]int{}, Elapsed: time.Since(start)}
	for _, s := range senders {
		for c, n := range s.byStatus {
			rep.ByStatus[c] += n
		}
		rep.Errors += s.errors
		rep.latencies = append(rep.latencies, s.latencies...)
	}
	slices.Sort(rep.latencies)
	return rep
}

func dispatch(ctx context.Context, gen *Generator, cfg LoadConfig, senders []*sender, start time.Time) int {
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
}

func (s *sender) run() {
	for ev := range s.queue {
		code, took, err := send(s.cfg, ev)
		if err != nil {
			s.errors++
			continue
		}
		s.byStatus[code]++
		if code >= 200 && code < 300 {
			s.latencies = append(s.latencies, took)
		}
	}
}

func send(cfg *LoadConfig, ev Event) (int, time.Duration, error) {
	method, url, body, contentType := http.MethodPost, cfg.Target, ev.Body, "application/json"
	if cfg.Pushgateway {
		method, url, body, contentType = http.MethodPut, strings.TrimSuffix(cfg.Target, "/")+ev.PushPath(), ev.PushBody(), "text/plain; version=0.0.4"
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range cfg.Header {
		req.Header[k] = v
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
