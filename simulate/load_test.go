package simulate

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// fastRetry retries for up to a minute with waits of milliseconds.
var fastRetry = Retry{For: time.Minute, First: time.Millisecond, Max: 10 * time.Millisecond}

// frozen is a clock that stands still: a stormy generator's events are then
// the same at every run, so two generators of one seed agree.
func frozen() time.Time { return time.UnixMilli(1700000000000) }

func stormy() *Generator {
	cfg := DefaultFleetConfig
	cfg.Scenario = Stormy
	return NewGenerator(cfg, frozen)
}

// flakyTarget answers each request as its script says for the request's
// number, and records the bodies it took (a 2xx), in arrival order.
type flakyTarget struct {
	script func(n int, body []byte) int // 0: no answer (the connection is dropped)
	n      atomic.Int64
	mu     sync.Mutex
	seen   map[string]int // attempts per body
	taken  [][]byte
}

func newFlakyTarget(t *testing.T, script func(n int, body []byte) int) (*flakyTarget, *httptest.Server) {
	f := &flakyTarget{script: script, seen: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *flakyTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen[string(body)]++
	f.mu.Unlock()
	code := f.script(int(f.n.Add(1)-1), body)
	if code == 0 {
		panic(http.ErrAbortHandler) // the connection drops without an answer
	}
	if code < 300 {
		f.mu.Lock()
		f.taken = append(f.taken, body)
		f.mu.Unlock()
	}
	w.WriteHeader(code)
}

// TestRunRetriesUntilTaken: a target that at first drops the connection,
// answers 503 or 429, then takes events, loses none of them: each is
// retried until taken, each server's events are taken in the order they
// happened, and the report counts the retries and no loss.
func TestRunRetriesUntilTaken(t *testing.T) {
	failures := []int{0, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway}
	target, srv := newFlakyTarget(t, func(n int, _ []byte) int {
		if n < 60 || n%7 == 0 { // down at first, then now and then
			return failures[n%len(failures)]
		}
		return http.StatusNoContent
	})
	const count = 300
	rep := Run(t.Context(), stormy(), LoadConfig{Target: srv.URL, Concurrency: 4, Count: count, Retry: fastRetry})
	var out strings.Builder
	rep.Write(&out)
	if rep.Acked() != count || rep.Lost+rep.Undelivered != 0 || rep.Retries < 60 ||
		rep.RetriedFor["no answer"] == 0 || rep.RetriedFor["status 429"] == 0 || rep.RetriedFor["status 503"] == 0 {
		t.Fatalf("report:\n%s", out.String())
	}
	if !strings.Contains(out.String(), ": 300 acknowledged") || !strings.Contains(out.String(), "\nlost: 0 (") {
		t.Errorf("report:\n%s", out.String())
	}
	// Each server's events were taken once each, in the order they happened.
	want := map[string][]string{}
	gen := stormy()
	for range count {
		ev := gen.Next()
		want[ev.Key] = append(want[ev.Key], string(ev.Body))
	}
	got := map[string][]string{}
	for _, body := range target.taken {
		for key, bodies := range want {
			if slices.Contains(bodies, string(body)) {
				got[key] = append(got[key], string(body))
			}
		}
	}
	for key, bodies := range want {
		if !slices.Equal(got[key], bodies) {
			t.Errorf("%s: the target took %d events, out of order or twice; want its %d in order", key, len(got[key]), len(bodies))
		}
	}
	// The report's fleet is the fleet the events describe.
	for key, st := range rep.Fleet {
		if st.Origin+"/"+st.ID != key || st.State == "" {
			t.Errorf("fleet %s: %+v", key, st)
		}
	}
	if len(rep.Fleet) != gen.Size() {
		t.Errorf("the report's fleet holds %d servers, the generator's %d", len(rep.Fleet), gen.Size())
	}
}

// TestRunDoesNotRetryABadRequest: a 4xx other than 429 is the body's fault:
// counted as rejected, sent once, never retried.
func TestRunDoesNotRetryABadRequest(t *testing.T) {
	target, srv := newFlakyTarget(t, func(_ int, body []byte) int {
		if strings.Contains(string(body), ".stats") {
			return http.StatusBadRequest
		}
		return http.StatusNoContent
	})
	rep := Run(t.Context(), stormy(), LoadConfig{Target: srv.URL, Concurrency: 2, Count: 200, Retry: fastRetry})
	if rep.Rejected == 0 || rep.Rejected != rep.ByStatus[http.StatusBadRequest] || rep.Retries != 0 || rep.Lost != 0 ||
		rep.Acked()+rep.Rejected != 200 {
		t.Fatalf("report %+v", rep)
	}
	for body, n := range target.seen {
		if n != 1 {
			t.Errorf("sent %d times: %s", n, body)
		}
	}
}

// TestRunGivesUp: events a target keeps refusing with a 503 are retried
// until the bound, then counted as lost; the run ends. The bound runs from
// when an event was handed to its sender, so that events waiting behind a
// retried one (in order) are not retried for long after it.
func TestRunGivesUp(t *testing.T) {
	target, srv := newFlakyTarget(t, func(int, []byte) int { return http.StatusServiceUnavailable })
	retry := Retry{For: 100 * time.Millisecond, First: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	rep := Run(t.Context(), stormy(), LoadConfig{Target: srv.URL, Concurrency: 2, Count: 20, Retry: retry})
	if rep.Lost != 20 || rep.Acked() != 0 || rep.ByStatus[http.StatusServiceUnavailable] != 20 || rep.Retries < 2 {
		t.Fatalf("report %+v", rep)
	}
	if attempts := slices.Collect(maps.Values(target.seen)); slices.Max(attempts) < 3 || slices.Min(attempts) < 1 {
		t.Fatalf("attempts per event: %v", attempts)
	}
	// Without retries (the zero Retry), one attempt each.
	_, srv = newFlakyTarget(t, func(int, []byte) int { return http.StatusServiceUnavailable })
	if rep := Run(t.Context(), stormy(), LoadConfig{Target: srv.URL, Count: 20}); rep.Lost != 20 || rep.Retries != 0 {
		t.Fatalf("without retries: report %+v", rep)
	}
}

// TestRunStopsAtOnce: a cancelled run stops waiting for answers and
// retries, and reports what was not acknowledged as undelivered.
func TestRunStopsAtOnce(t *testing.T) {
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then a dropped connection ends the request's context
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-asked; cancel() }()
	rep := Run(ctx, stormy(), LoadConfig{Target: srv.URL, Concurrency: 2, Rate: 100, Retry: DefaultRetry})
	if rep.Sent == 0 || rep.Undelivered != rep.Sent || rep.Lost != 0 || rep.Acked() != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestRetryWaits: waits double from First up to Max, within ±50%.
func TestRetryWaits(t *testing.T) {
	r := Retry{For: time.Hour, First: time.Second, Max: 30 * time.Second}
	for attempt, mean := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30} {
		mean *= time.Second
		for range 100 {
			if w := r.wait(attempt); w < mean/2 || w > mean*3/2 {
				t.Fatalf("attempt %d: waits %s, want %s ± 50%%", attempt, w, mean)
			}
		}
	}
	if w := (Retry{For: time.Hour}).wait(0); w < DefaultRetry.First/2 || w > DefaultRetry.First*3/2 {
		t.Fatalf("the zero First waits %s", w)
	}
}

// TestRunWakesWaitingSenders: once the target answers one sender, the
// others waiting to retry try at once rather than after their wait (an
// hour here): the backlog of a simulator started before the exporter
// arrives as soon as the exporter does.
func TestRunWakesWaitingSenders(t *testing.T) {
	var logs testenv.LogBuffer
	_, srv := newFlakyTarget(t, func(n int, _ []byte) int {
		if n == 0 {
			return http.StatusServiceUnavailable
		}
		for !strings.Contains(logs.String(), "retrying") { // the first sender waits to retry
			time.Sleep(time.Millisecond)
		}
		return http.StatusNoContent
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep := Run(ctx, stormy(), LoadConfig{Target: srv.URL, Concurrency: 4, Count: 40,
		Retry: Retry{For: 2 * time.Hour, First: time.Hour, Max: time.Hour}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if rep.Acked() != 40 || rep.Retries != 1 {
		t.Fatalf("report %+v", rep)
	}
}
