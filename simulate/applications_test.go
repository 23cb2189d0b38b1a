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
