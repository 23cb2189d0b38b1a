package simulate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// fakeClock advances by step at every reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.UnixMilli(1700000000000)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

var testApps = AppConfig{Seed: 3, IDs: []string{"app-a", "app-b", "app-c"}}

// TestAppGeneratorLife: a run of the applications is valid, reproducible,
// covers every documented kind, and lives plausibly: per connection,
// initializing, then connecting, then connected within 0.2–3 s or failed.
func TestAppGeneratorLife(t *testing.T) {
	a, b := NewAppGenerator(testApps, fakeClock(10*time.Millisecond)), NewAppGenerator(testApps, fakeClock(10*time.Millisecond))
	kinds := map[string]int{}
	conns := map[string][]event.ApplicationEvent{}
	for i := range 20000 {
		ea, eb := a.Next(), b.Next()
		if !bytes.Equal(ea.Body, eb.Body) {
			t.Fatalf("event %d differs between two generators of one seed", i)
		}
		evs, err := event.DecodeApplications(ea.Body, event.DefaultDecodeOptions, time.UnixMilli(1800000000000))
		if err != nil {
			t.Fatalf("event %d is not valid: %v\n%s", i, err, ea.Body)
		}
		ev := evs[0]
		if ev.ApplicationID != ea.app.app || ea.Key != "app/"+ev.ApplicationID {
			t.Fatalf("event %d: application %q, key %q", i, ev.ApplicationID, ea.Key)
		}
		kinds[ev.Type]++
		if ev.ConnectionID != "" {
			conns[ev.ConnectionID] = append(conns[ev.ConnectionID], ev)
		}
	}
	for _, k := range applications.Kinds() {
		if kinds[k] == 0 {
			t.Errorf("20,000 events hold no %s: %v", k, kinds)
		}
	}
	checkConnections(t, conns)
}

// checkConnections checks each connection's life, and that about 2% fail.
func checkConnections(t *testing.T, conns map[string][]event.ApplicationEvent) {
	t.Helper()
	failed, finished := 0, 0
	for id, evs := range conns {
		if evs[0].Type != "connection.initializing" || len(evs) < 3 {
			continue // cut by the end of the run
		}
		if evs[1].Type != "connection.connecting" {
			t.Fatalf("connection %s: %s after initializing", id, evs[1].Type)
		}
		i := slices.IndexFunc(evs, func(e event.ApplicationEvent) bool {
			return e.Type == "connection.connected" || e.Type == "connection.failed"
		})
		if i < 0 {
			continue
		}
		finished++
		if setup := evs[i].Timestamp - evs[0].Timestamp; setup < minSetupMs || setup > maxSetupMs {
			t.Fatalf("connection %s: %s after %d ms", id, evs[i].Type, setup)
		}
		if evs[i].Type == "connection.failed" {
			failed++
		}
	}
	if ratio := float64(failed) / float64(finished); finished < 1000 || ratio < 0.005 || ratio > 0.05 {
		t.Fatalf("%d of %d connections failed", failed, finished)
	}
}

// TestRunBatchesSignsAndTallies: with Batch and Secrets, the senders post
// arrays of one application's events, signed with its secret, and the
// report counts what was acknowledged.
func TestRunBatchesSignsAndTallies(t *testing.T) {
	secrets := map[string]string{"app-a": "sa", "app-b": "sb", "app-c": "sc"}
	var mu sync.Mutex
	received := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var events []json.RawMessage
		if err := json.Unmarshal(body, &events); err != nil || len(events) == 0 || len(events) > 8 {
			http.Error(w, "not a batch of 1 to 8 events", http.StatusBadRequest)
			return
		}
		evs, err := event.DecodeApplications(body, event.DefaultDecodeOptions, time.Now().Add(time.Hour))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		app := evs[0].ApplicationID
		if err := appsig.Verify(appsig.Secrets(secrets), body, r.Header.Get(appsig.Header), []string{app}); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		received[app] += len(evs)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	rep := Run(t.Context(), NewAppGenerator(testApps, nil), LoadConfig{Target: srv.URL, Concurrency: 2, Count: 3000, Batch: 8, Secrets: secrets})
	if rep.Acked() != 3000 {
		var out strings.Builder
		rep.Write(&out)
		t.Fatalf("%s", out.String())
	}
	for app, n := range received {
		total := 0
		for _, c := range rep.Applications.Events[app] {
			total += c
		}
		if total != n {
			t.Errorf("%s: the report counts %d events, the target received %d", app, total, n)
		}
	}
	if len(received) != 3 {
		t.Fatalf("received events of %v", received)
	}
}

// TestAppGeneratorDistributions: the applications live by the documented
// distributions: setups within 0.2–3 s, connections up 2–8 s (closed 50 ms
// after closing), 1% of connected ones failing; failures carry errors of
// every cause, and the cause the simulator reports for each is the one
// the exporter's documented mapping gives its error.
func TestAppGeneratorDistributions(t *testing.T) {
	gen := NewAppGenerator(testApps, fakeClock(10*time.Millisecond))
	up := map[string]int64{}
	causes := map[string]int{}
	var dropped, closed int
	for i := range 50000 {
		ev := gen.Next()
		evs, err := event.DecodeApplications(ev.Body, event.DefaultDecodeOptions, time.UnixMilli(1800000000000))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		e, a := evs[0], ev.app
		switch e.Type {
		case "connection.connected":
			up[e.ConnectionID] = e.Timestamp
		case "connection.closed", "connection.failed":
			at, wasUp := up[e.ConnectionID]
			if wasUp != (a.upMs >= 0) || (wasUp && e.Timestamp-at != a.upMs) {
				t.Fatalf("%s of %s after %d ms up, the simulator says %d", e.Type, e.ConnectionID, e.Timestamp-at, a.upMs)
			}
			if e.Type == "connection.closed" {
				closed++
				if a.upMs < minUpMs+50 || a.upMs > maxUpMs+50 {
					t.Fatalf("closed after %d ms up", a.upMs)
				}
				break
			}
			if wasUp {
				dropped++
			}
			causes[a.cause]++
			if got := applications.ClassifyError(e.Error).String(); got != a.cause {
				t.Fatalf("error %q: the exporter's class %s, the simulator's %s", e.Error, got, a.cause)
			}
		}
	}
	if len(causes) != 6 {
		t.Errorf("failures by cause %v: want all six", causes)
	}
	if ratio := float64(dropped) / float64(dropped+closed); dropped == 0 || ratio > 0.03 {
		t.Errorf("%d of %d connected connections failed", dropped, dropped+closed)
	}
}

// ackingTarget acknowledges every webhook, counting nothing.
func ackingTarget(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAppLiveLevels: once every event given out is acknowledged, what the
// report says is active is what the generator, and so the simulated
// Gateway, counts; requests spread over two targets in turn.
func TestAppLiveLevels(t *testing.T) {
	gen := NewAppGenerator(testApps, nil)
	rep := Run(t.Context(), gen, LoadConfig{Targets: []string{ackingTarget(t), ackingTarget(t)}, Concurrency: 3, Count: 4000, Batch: 5})
	if rep.Acked() != 4000 {
		t.Fatalf("%d of 4000 acknowledged", rep.Acked())
	}
	srv := httptest.NewServer(NewGateway(NewGenerator(DefaultFleetConfig, nil), GatewayConfig{Applications: testApps.IDs, Live: gen.Live}))
	defer srv.Close()
	obs := poll(t, srv.URL, "")
	busy := 0
	for _, app := range obs.Applications {
		lv := rep.Applications.Live(app.ID)
		if *app.Channels != int64(lv.Channels) || *app.Clients != int64(lv.Clients) || *app.Connections != int64(lv.Connections) {
			t.Errorf("%s: the Gateway counts %d channels, %d clients, %d connections; the acknowledged events leave %+v",
				app.ID, *app.Channels, *app.Clients, *app.Connections, lv)
		}
		busy += lv.Connections + lv.Channels
	}
	if busy == 0 {
		t.Fatal("nothing active at the end of the run: the test would not see a difference")
	}
}
