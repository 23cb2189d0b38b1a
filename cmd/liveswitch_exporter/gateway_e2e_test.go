package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// apiKey is the key the simulated Gateway requires in the end-to-end tests;
// no exporter log may ever hold it.
const apiKey = "e2e-api-key-7c1d0f4b9a"

// writeKeyFile writes apiKey to a file for --liveswitch.api-key-file.
func writeKeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(path, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSimulator runs `simulate` with its Gateway's API on a free port and
// returns it once the API listens; its address is the process's addr.
func startSimulator(t testing.TB, args ...string) *process {
	t.Helper()
	return startListening(t, nil, append([]string{"simulate", "--api-listen-address=127.0.0.1:0",
		"--api-key-file=" + writeKeyFile(t)}, args...)...)
}

// apiFlags point an exporter at a simulator's Gateway.
func apiFlags(t testing.TB, sim *process, interval string) []string {
	return []string{"--liveswitch.api-url=" + sim.url("/admin/api"), "--liveswitch.api-key-file=" + writeKeyFile(t),
		"--liveswitch.api-interval=" + interval}
}

// simulatedGateway serves, on a loopback listener of the test, the Gateway
// of the default simulated fleet after its first n events: the fleet that
// feedSimulated(t, p, n) describes to an exporter through webhooks.
func simulatedGateway(t testing.TB, n int, cfg simulate.GatewayConfig) string {
	t.Helper()
	gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
	for range n {
		gen.Next()
	}
	srv := httptest.NewServer(simulate.NewGateway(gen, cfg))
	t.Cleanup(srv.Close)
	return srv.URL
}

// listedBySimulator asks the simulated Gateway which media servers it lists.
func listedBySimulator(t testing.TB, sim *process) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sim.url("/admin/api/v1/mediaservers"), nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var servers []struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&servers); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range servers {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// labelled returns, by server id, the values of a family's series whose
// label name has value (any series when name is empty).
func labelled(mf *dto.MetricFamily, name, value string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var id string
		match := name == ""
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "id":
				id = l.GetValue()
			case name:
				match = l.GetValue() == value
			}
		}
		if match {
			out[id] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// gatewayView is what one scrape says of the media servers.
type gatewayView struct {
	registered, listed, capacity, events map[string]float64
	reconciled                           map[string]float64 // by change
}

func viewOf(t testing.TB, p *process) gatewayView {
	t.Helper()
	f := scrape(t, p)
	v := gatewayView{
		registered: labelled(f["liveswitch_server_state"], "state", "registered"),
		listed:     labelled(f["liveswitch_server_gateway_listed"], "", ""),
		capacity:   labelled(f["liveswitch_mediaserver_used_capacity_ratio"], "", ""),
		events:     labelled(f["liveswitch_server_events_total"], "origin", "mediaserver"),
		reconciled: map[string]float64{},
	}
	for _, m := range f["liveswitch_exporter_reconciled_total"].GetMetric() {
		v.reconciled[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	return v
}

// agrees reports whether webhooks and polls tell the same of every media
// server but those in except: registered exactly when listed.
func (v gatewayView) agrees(except ...string) bool {
	for id, listed := range v.listed {
		if !slices.Contains(except, id) && (v.registered[id] == 1) != (listed == 1) {
			return false
		}
	}
	return len(v.listed) > 0
}

// missPlan names two webhooks of a simulated fleet's life to lose: the
// registered of a media server that just started (and then stays as it is
// for a while), and the unregistered and stopped of one that shuts down
// (and stays down).
type missPlan struct {
	seed                     uint64
	registered, unregistered int // indices in the event stream
	keys                     []string
	types                    []string
}

// planMisses finds, among a few seeds, a life in which both losses come
// early and are followed by quiet periods of the servers concerned.
func planMisses(t testing.TB) missPlan {
	const quiet, horizon = 150, 400
	for seed := uint64(1); seed <= 30; seed++ {
		cfg := simulate.DefaultFleetConfig
		cfg.Seed, cfg.Scenario = seed, simulate.Stormy // as --scenario=stormy
		gen := simulate.NewGenerator(cfg, nil)
		p := missPlan{seed: seed, registered: -1, unregistered: -1}
		for range horizon + quiet {
			ev := gen.Next()
			var env struct{ Type string }
			_ = json.Unmarshal(ev.Body, &env)
			p.keys, p.types = append(p.keys, ev.Key), append(p.types, env.Type)
		}
		calm := func(key string, from int) bool { return !slices.Contains(p.keys[from:from+quiet], key) }
		for i := 60; i < horizon; i++ {
			k := p.keys[i]
			if p.registered < 0 && p.types[i] == "mediaserver.registered" && p.keys[i-1] == k &&
				p.types[i-1] == "mediaserver.started" && calm(k, i+1) {
				p.registered = i
			}
			if p.unregistered < 0 && p.types[i] == "mediaserver.unregistered" && p.keys[i+1] == k &&
				p.types[i+1] == "mediaserver.stopped" && calm(k, i+2) {
				p.unregistered = i
			}
		}
		if p.registered > 0 && p.unregistered > 0 && p.keys[p.registered] != p.keys[p.unregistered] {
			return p
		}
	}
	t.Fatal("no simulated life with both losses early; widen the search")
	return missPlan{}
}

func (p missPlan) id(i int) string { _, id, _ := strings.Cut(p.keys[i], "/"); return id }

// lossyRelay stands between the simulator and the exporter, like the
// network LiveSwitch's webhooks cross: it holds every delivery until
// released, then forwards them, except those the plan loses.
type lossyRelay struct {
	plan     missPlan
	target   string
	released chan struct{}
	once     sync.Once
	n        atomic.Int64
	mu       sync.Mutex
	wrong    []string // deliveries that were not the planned event
	lostAt   map[int]time.Time
}

func newLossyRelay(t *testing.T, plan missPlan) (*lossyRelay, *httptest.Server) {
	r := &lossyRelay{plan: plan, released: make(chan struct{}), lostAt: map[int]time.Time{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	t.Cleanup(r.release) // before Close, which waits for held deliveries
	return r, srv
}

func (r *lossyRelay) release() { r.once.Do(func() { close(r.released) }) }

func (r *lossyRelay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.released:
	case <-req.Context().Done():
		return
	}
	body, _ := io.ReadAll(req.Body)
	i := int(r.n.Add(1) - 1)
	if i < len(r.plan.keys) && !bytes.Contains(body, []byte(r.plan.types[i])) {
		r.mu.Lock()
		r.wrong = append(r.wrong, fmt.Sprintf("%d: %s", i, body))
		r.mu.Unlock()
	}
	if i == r.plan.registered || i == r.plan.unregistered || i == r.plan.unregistered+1 {
		r.mu.Lock()
		r.lostAt[i] = time.Now()
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent) // lost: LiveSwitch believes it delivered
		return
	}
	resp, err := http.Post(r.target, "application/json", bytes.NewReader(body))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
}

// TestGatewayBootstrapsAndReconciles: an exporter started next to a fleet
// that is already up, before any webhook reaches it, lists every media
// server the Gateway lists, with capacity. Once webhooks flow, webhooks
// and polls agree; a lost registered webhook is corrected from the
// Gateway's list, and a media server whose unregistered and stopped were
// lost shows as registered but not listed (gateway_listed 0), which
// LiveSwitchMediaServerNotListedByGateway pages on.
func TestGatewayBootstrapsAndReconciles(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	plan := planMisses(t)
	relay, relaySrv := newLossyRelay(t, plan)
	sim := startSimulator(t, "--target="+relaySrv.URL, "--scenario=stormy", "--concurrency=1", "--rate=25", fmt.Sprintf("--seed=%d", plan.seed))
	t.Cleanup(relay.release) // the simulator stops only once its delivery in hand is answered
	p := startExporter(t, apiFlags(t, sim, "250ms")...)
	relay.target = p.url("/webhook")

	// No webhook has arrived: the Gateway's list alone makes the fleet.
	want := listedBySimulator(t, sim)
	testenv.WaitFor(t, 30*time.Second, "every listed media server, with capacity", func() bool {
		v := viewOf(t, p)
		var got []string
		for id, listed := range v.listed {
			if listed == 1 && v.registered[id] == 1 && v.capacity[id] > 0 {
				got = append(got, id)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
	if v := viewOf(t, p); v.reconciled["created"] != float64(len(want)) || slices.Max(slices.Collect(maps.Values(v.events))) != 0 {
		t.Fatalf("bootstrap: reconciled %v, webhook events %v", v.reconciled, v.events)
	}
	t.Logf("%d media servers listed before any webhook", len(want))

	relay.release()
	missedReg, missedUnreg := plan.id(plan.registered), plan.id(plan.unregistered)
	testenv.WaitFor(t, 60*time.Second, "webhooks and polls to agree", func() bool {
		v := viewOf(t, p)
		applied := false
		for _, n := range v.events {
			applied = applied || n > 0
		}
		return applied && v.agrees(missedReg, missedUnreg)
	})
	testenv.WaitFor(t, 60*time.Second, "the lost registered webhook to be corrected", func() bool {
		v := viewOf(t, p)
		return relay.n.Load() > int64(plan.registered) && v.registered[missedReg] == 1 && v.reconciled["registered"] >= 1
	})
	relay.mu.Lock()
	t.Logf("the lost registered webhook of %s was corrected %s after it was lost (interval 250ms)",
		missedReg, time.Since(relay.lostAt[plan.registered]).Round(10*time.Millisecond))
	relay.mu.Unlock()
	testenv.WaitFor(t, 60*time.Second, "the server whose unregistered was lost to show as not listed", func() bool {
		v := viewOf(t, p)
		return relay.n.Load() > int64(plan.unregistered+1) && v.registered[missedUnreg] == 1 && v.listed[missedUnreg] == 0
	})
	relay.mu.Lock()
	defer relay.mu.Unlock()
	if len(relay.wrong) > 0 {
		t.Fatalf("the simulator's life differs from the plan's: %v", relay.wrong[:min(3, len(relay.wrong))])
	}
	if strings.Contains(p.log(), apiKey) {
		t.Fatal("the API key shows in the exporter's log")
	}
}

// gatewaySection keeps the lines of an exposition that must be identical on
// every replica: the fleet's, and those from the Gateway's REST API but the
// per-replica request counters.
func gatewaySection(exposition string) string {
	var out []string
	for _, line := range strings.Split(exposition, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		for _, prefix := range []string{"liveswitch_mediaserver_", "liveswitch_application_", "liveswitch_api_up",
			"liveswitch_api_last_success_timestamp_seconds", "liveswitch_exporter_reconciled_total"} {
			if strings.HasPrefix(name, prefix) {
				out = append(out, line)
			}
		}
	}
	return fleetSection(exposition) + "\n" + strings.Join(out, "\n")
}

// apiRequests is how many requests p made to the Gateway's API.
func apiRequests(t testing.TB, p *process) float64 {
	t.Helper()
	n := 0.0
	for _, m := range scrape(t, p)["liveswitch_api_requests_total"].GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return n
}

// TestReplicasShareGatewayObservations: two replicas with the API on (the
// simulated Gateway answering in PascalCase). Only the one holding the
// claim polls; the other folds what it logged, and both expose
// byte-identical fleet and API series. When the polling replica dies, the
// other takes over.
func TestReplicasShareGatewayObservations(t *testing.T) {
	redis := testenv.StartRedis(t)
	relay, relaySrv := newLossyRelay(t, missPlan{registered: -1, unregistered: -1})
	sim := startSimulator(t, "--target="+relaySrv.URL, "--rate=0", "--count=300", "--concurrency=4", "--api-pascal-case")
	t.Cleanup(relay.release)
	flags := append(apiFlags(t, sim, "500ms"), "--liveswitch.api-timeout=1s")
	a, b := startReplica(t, redis.URL(), flags...), startReplica(t, redis.URL(), flags...)
	relay.target = a.url("/webhook")
	relay.release()

	var section string
	testenv.WaitFor(t, 60*time.Second, "replicas to expose identical fleet and API series", func() bool {
		_, ea := get(a.url("/metrics"))
		_, eb := get(b.url("/metrics"))
		section = gatewaySection(ea)
		return relay.n.Load() == 300 && section == gatewaySection(eb) &&
			strings.Contains(section, "\nliveswitch_mediaserver_used_capacity_ratio{") &&
			strings.Contains(section, "\nliveswitch_server_gateway_listed{") && strings.Contains(section, "\nliveswitch_api_up 1")
	})
	requests := []float64{apiRequests(t, a), apiRequests(t, b)}
	if (requests[0] == 0) == (requests[1] == 0) {
		t.Fatalf("requests to the API by each replica: %v; exactly one must poll", requests)
	}
	t.Logf("identical on both replicas: %d lines; requests by replica: %v", strings.Count(section, "\n"), requests)

	poller, other := a, b
	if requests[0] == 0 {
		poller, other = b, a
	}
	poller.kill(t)
	testenv.WaitFor(t, 30*time.Second, "the other replica to take the polling over", func() bool {
		return apiRequests(t, other) > 0
	})
}

// TestGatewayFlagsAtStart: a URL or key file the exporter cannot use stops
// it at start with one line that names the flag but neither the secret nor
// the path; --liveswitch.api-insecure-skip-verify is warned about; a
// refused key leaves the exporter serving, with liveswitch_api_up 0.
func TestGatewayFlagsAtStart(t *testing.T) {
	secretDir := filepath.Join(t.TempDir(), "secret-dir")
	for _, tc := range []struct {
		name, flag, want string
	}{
		{"credentials in the URL", "--liveswitch.api-url=http://admin:hunter2-secret@gw:9090/admin/api", "no user info"},
		{"key in the query", "--liveswitch.api-url=http://gw:9090/admin/api?key=hunter2-secret", "no user info, query or fragment"},
		{"missing key file", "--liveswitch.api-key-file=" + secretDir + "/hunter2-secret", "reading --liveswitch.api-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--web.listen-address=127.0.0.1:0", "--storage.in-memory", tc.flag}
			if !strings.HasPrefix(tc.flag, "--liveswitch.api-url") {
				args = append(args, "--liveswitch.api-url=http://127.0.0.1:9/admin/api")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output:\n%s", err, out)
			}
			if strings.Contains(string(out), "hunter2-secret") || strings.Contains(string(out), secretDir) {
				t.Fatalf("the secret or its path is in the output:\n%s", out)
			}
		})
	}

	sim := startSimulator(t, "--target=http://127.0.0.1:9/webhook", "--rate=1")
	wrongKey := filepath.Join(t.TempDir(), "wrong-key")
	if err := os.WriteFile(wrongKey, []byte("wrong-key-hunter2-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, "--liveswitch.api-url="+sim.url("/admin/api"), "--liveswitch.api-key-file="+wrongKey,
		"--liveswitch.api-interval=200ms", "--liveswitch.api-insecure-skip-verify")
	testenv.WaitFor(t, 30*time.Second, "a refused key to be logged", func() bool {
		return strings.Contains(p.log(), "HTTP 401: the API key was refused")
	})
	if code, body := get(p.url("/metrics")); code != http.StatusOK || !strings.Contains(body, "\nliveswitch_api_up 0\n") {
		t.Fatalf("/metrics with a refused key: %d", code)
	}
	if log := p.log(); strings.Contains(log, "hunter2-secret") || !strings.Contains(log, "--liveswitch.api-insecure-skip-verify") {
		t.Fatalf("log:\n%s", log)
	}
}
