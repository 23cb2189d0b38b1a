package exporter

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

// testServer is the exporter's HTTP surface on a real loopback listener,
// backed by an in-memory fleet.
type testServer struct {
	*httptest.Server
	handler http.Handler
	fleet   *fleet.Fleet
	ready   *atomic.Bool
}

func newTestServer(t testing.TB, maxBody int64) *testServer {
	t.Helper()
	return newTestServerWithStore(t, maxBody, nil)
}

// newTestServerWithStore is newTestServer on a real store.
func newTestServerWithStore(t testing.TB, maxBody int64, store storage.Store) *testServer {
	t.Helper()
	return newTestServerFull(t, store, func(c *Config) { c.MaxBodyBytes = maxBody })
}

// newTestServerWith is newTestServer with the config changed by mutate.
func newTestServerWith(t testing.TB, mutate func(*Config)) *testServer {
	t.Helper()
	return newTestServerFull(t, nil, mutate)
}

func newTestServerFull(t testing.TB, store storage.Store, mutate func(*Config)) *testServer {
	t.Helper()
	f := fleet.New()
	w := writer.New(f, store, writer.Options{Decode: event.DefaultDecodeOptions})
	t.Cleanup(w.Close)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector.NewCollector(f))
	ready := &atomic.Bool{}
	ready.Store(true)
	cfg := Config{
		TelemetryPath: "/metrics", Ingester: w, Forgetter: w, Fleet: f, Ready: ready.Load, MaxBodyBytes: DefaultMaxBodyBytes,
		Registry: reg, Logger: slog.New(slog.DiscardHandler),
	}
	mutate(&cfg)
	h, err := NewHandlers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Main)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, handler: h.Main, fleet: f, ready: ready}
}

// inFlight reads the webhook requests in flight from /metrics.
func (s *testServer) inFlight() int {
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "liveswitch_exporter_webhook_requests_in_flight "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}

func (s *testServer) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return s.doWith(t, method, path, body, nil)
}

// doWith is do with request headers.
func (s *testServer) doWith(t *testing.T, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func serverEvent(ts int64, typ, object string) string {
	origin, _, _ := strings.Cut(typ, ".")
	return `{"timestamp":` + strconv.FormatInt(ts, 10) + `,"origin":"` + origin + `","type":"` + typ + `","` + origin + `":` + object + `}`
}

func TestWebhookAnswers(t *testing.T) {
	srv := newTestServer(t, 1024)
	now := time.Now().UnixMilli()
	started := serverEvent(now, "mediaserver.started", `{"id":"m1","region":"eu","deploymentId":"d"}`)
	for _, tc := range []struct {
		name, method, body string
		code               int
		reply              string
		servers            int
	}{
		{"applied", "POST", started, http.StatusNoContent, "", 1},
		{"duplicate", "POST", started, http.StatusAccepted, "duplicate=1", 1},
		{"out of order", "POST", serverEvent(now-1000, "mediaserver.stopped", `{"id":"m1"}`), http.StatusAccepted, "out_of_order=1", 1},
		{"batch in order", "POST", "[" + serverEvent(now+1, "mediaserver.registered", `{"id":"m1"}`) + "," +
			serverEvent(now+2, "gateway.started", `{"id":"g1"}`) + "]", http.StatusNoContent, "", 2},
		{"unknown kind", "POST", serverEvent(now, "gateway.updated", `{"id":"g1"}`), http.StatusAccepted, "ignored=1", 2},
		{"client event", "POST", `{"timestamp":1224486000000,"origin":"client","type":"client.registered","client":{"id":"c"}}`,
			http.StatusAccepted, "ignored=1", 2},
		{"stats of an unknown server", "POST", serverEvent(now, "sipconnector.stats", `{"id":"nobody"}`), http.StatusAccepted, "ignored=1", 2},
		{"malformed", "POST", `{"timestamp":`, http.StatusBadRequest, "malformed JSON", 2},
		{"missing id", "POST", serverEvent(now, "gateway.started", `{}`), http.StatusBadRequest, `missing "id"`, 2},
		{"batch with one bad event", "POST", "[" + serverEvent(now+5, "gateway.stopped", `{"id":"g1"}`) + `,{"type":"x.started"}]`,
			http.StatusBadRequest, "event 1:", 2},
		{"too large", "POST", `{"pad":"` + strings.Repeat("x", 2048) + `"}`, http.StatusRequestEntityTooLarge, "exceeds", 2},
		{"GET", "GET", "", http.StatusMethodNotAllowed, "only POST", 2},
		{"PUT", "PUT", started, http.StatusMethodNotAllowed, "only POST", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The state carries over from case to case: each case runs
			// against the fleet the previous ones left.
			code, reply := srv.do(t, tc.method, WebhookPath, tc.body)
			if code != tc.code || !strings.Contains(reply, tc.reply) {
				t.Fatalf("got %d %q, want %d containing %q", code, reply, tc.code, tc.reply)
			}
			if code >= 400 && strings.Count(strings.TrimSpace(reply), "\n") > 0 {
				t.Fatalf("reason is not one line: %q", reply)
			}
			if n := srv.fleet.Len(); n != tc.servers {
				t.Fatalf("%d servers tracked, want %d", n, tc.servers)
			}
		})
	}
	g, _, _ := srv.fleet.Server(fleet.Key{Origin: "gateway", ID: "g1"})
	if g.State != fleet.StateRunning {
		t.Fatalf("the rejected batch stopped the gateway: %+v", g)
	}
	_, metrics := srv.do(t, "GET", "/metrics", "")
	for _, want := range []string{
		`liveswitch_exporter_webhook_requests_total{code="204"} 2`,
		`liveswitch_exporter_webhook_requests_total{code="202"} 5`,
		`liveswitch_exporter_webhook_requests_total{code="400"} 3`,
		`liveswitch_exporter_webhook_requests_total{code="413"} 1`,
		`liveswitch_exporter_webhook_requests_total{code="405"} 2`,
		`liveswitch_exporter_events_total{outcome="applied"} 3`,
		`liveswitch_exporter_events_total{outcome="invalid"} 4`,
		`liveswitch_servers{deployment_id="d",origin="mediaserver",region="eu",state="registered"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestProbesAndReadiness(t *testing.T) {
	srv := newTestServer(t, DefaultMaxBodyBytes)
	srv.ready.Store(false)
	body := serverEvent(time.Now().UnixMilli(), "gateway.started", `{"id":"g"}`)
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/-/healthy", "", http.StatusOK},
		{"GET", "/-/ready", "", http.StatusServiceUnavailable},
		{"POST", WebhookPath, body, http.StatusServiceUnavailable},
	} {
		if code, reply := srv.do(t, tc.method, tc.path, tc.body); code != tc.code {
			t.Errorf("not ready: %s %s: %d %q, want %d", tc.method, tc.path, code, reply, tc.code)
		}
	}
	if srv.fleet.Len() != 0 {
		t.Fatal("a webhook was applied before the fleet was ready")
	}
	srv.ready.Store(true)
	for _, tc := range []struct {
		method, path, body string
		code               int
		reply              string
	}{
		{"GET", "/-/ready", "", http.StatusOK, "Ready"},
		{"POST", WebhookPath, body, http.StatusNoContent, ""},
		{"GET", "/", "", http.StatusOK, "LiveSwitch Exporter"},
		{"GET", "/metrics", "", http.StatusOK, "liveswitch_server_up"},
	} {
		if code, reply := srv.do(t, tc.method, tc.path, tc.body); code != tc.code || !strings.Contains(reply, tc.reply) {
			t.Errorf("ready: %s %s: %d, want %d with %q", tc.method, tc.path, code, tc.code, tc.reply)
		}
	}
}

func TestDeleteServer(t *testing.T) {
	srv := newTestServer(t, DefaultMaxBodyBytes)
	if code, _ := srv.do(t, "POST", WebhookPath, serverEvent(time.Now().UnixMilli(), "mediaserver.started", `{"id":"a/b"}`)); code != http.StatusNoContent {
		t.Fatalf("post: %d", code)
	}
	for _, tc := range []struct {
		method, path string
		code, left   int
	}{
		{"DELETE", "/api/v1/servers/mediaserver/unknown", http.StatusNotFound, 1},
		{"DELETE", "/api/v1/servers/mediaserver/a%2Fb", http.StatusNoContent, 0},
		{"DELETE", "/api/v1/servers/mediaserver/a%2Fb", http.StatusNotFound, 0},
	} {
		if code, reply := srv.do(t, tc.method, tc.path, ""); code != tc.code || srv.fleet.Len() != tc.left {
			t.Fatalf("%s %s: %d %q with %d servers left; want %d with %d", tc.method, tc.path, code, reply, srv.fleet.Len(), tc.code, tc.left)
		}
	}
	if _, m := srv.do(t, "GET", "/metrics", ""); !strings.Contains(m, `liveswitch_exporter_servers_forgotten_total{reason="deleted"} 1`) {
		t.Fatal("the deletion is not counted")
	}
}

// TestStorageFailureAnswers503 closes the real store under a running
// exporter: webhooks are answered 503 with Retry-After, nothing is applied,
// and /metrics keeps serving the last state.
func TestStorageFailureAnswers503(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServerWithStore(t, DefaultMaxBodyBytes, store)
	f := srv.fleet
	now := time.Now().UnixMilli()
	post := func(body string) *http.Response {
		resp, err := http.Post(srv.URL+WebhookPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(serverEvent(now, "mediaserver.registered", `{"id":"m"}`)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("before the failure: %d", resp.StatusCode)
	}
	store.Close()
	resp := post(serverEvent(now+1, "mediaserver.unregistered", `{"id":"m"}`))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after the failure: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	m, _, _ := f.Server(fleet.Key{Origin: "mediaserver", ID: "m"})
	if m.State != fleet.StateRegistered {
		t.Fatalf("a failed write changed the fleet: %s", m.State)
	}
	r, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{"liveswitch_exporter_storage_errors_total 1",
		`liveswitch_server_state{deployment_id="",id="m",origin="mediaserver",region="",state="registered"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
