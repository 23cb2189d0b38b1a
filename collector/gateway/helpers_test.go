package gateway

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// testKey is the API key of the tests; no log line may ever hold it.
const testKey = "test-key-5f0c2d9e8b7a"

// fixtureAPI serves testdata as the Gateway's API, camelCase or PascalCase,
// to requests that carry its key (testKey when empty). hostile, when set,
// answers instead.
type fixtureAPI struct {
	pascal  bool
	key     string
	hostile atomic.Pointer[http.HandlerFunc]
}

func (a *fixtureAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := a.hostile.Load(); h != nil {
		(*h)(w, r)
		return
	}
	if key := cmp.Or(a.key, testKey); r.Header.Get("X-API-Key") != key {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401}`))
		return
	}
	file := map[string]string{
		"/admin/api/v1/mediaservers":                "mediaservers-camel.json",
		"/admin/api/v1.0/applications":              "applications.json",
		"/admin/api/v1.0/applications/app-meetings": "application-app-meetings.json",
		"/admin/api/v1.0/applications/app-webinars": "application-app-webinars.json",
	}[r.URL.Path]
	if a.pascal && file == "mediaservers-camel.json" {
		file = "mediaservers-pascal.json"
	}
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if file == "" || err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (a *fixtureAPI) answer(h http.HandlerFunc) { a.hostile.Store(&h) }

// stepClock is a clock that moves by step each time it is read (a second
// unless stopped), so that every poll has its own time.
type stepClock struct {
	ms      atomic.Int64
	stopped atomic.Bool
}

func (c *stepClock) Now() time.Time {
	step := int64(1000)
	if c.stopped.Load() {
		step = 0
	}
	return time.UnixMilli(1_700_000_000_000 + c.ms.Add(step))
}

func (c *stepClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// rig is a poller on a real loopback listener, writing to a real in-memory
// fleet.
type rig struct {
	api    *fixtureAPI
	srv    *httptest.Server
	fleet  *fleet.Fleet
	writer *writer.Writer
	poller *Poller
	clock  *stepClock
	reg    *prometheus.Registry
	logs   *testenv.LogBuffer
}

func newRig(t *testing.T, configure func(*Config)) *rig {
	t.Helper()
	r := &rig{api: &fixtureAPI{}, fleet: fleet.New(), clock: &stepClock{}, reg: prometheus.NewRegistry(), logs: &testenv.LogBuffer{}}
	r.srv = httptest.NewServer(r.api)
	t.Cleanup(r.srv.Close)
	r.writer = writer.New(r.fleet, nil, writer.Options{Now: r.clock.Now})
	t.Cleanup(r.writer.Close)
	cfg := Config{URL: r.srv.URL + "/admin/api", Key: testKey, Interval: 15 * time.Second, Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: r.clock.Now}
	if configure != nil {
		configure(&cfg)
	}
	p, err := New(cfg, r.writer, r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.poller = p
	r.reg.MustRegister(collector.NewCollector(r.fleet, collector.WithGatewayAPI(r.clock.Now)))
	return r
}

// exposition renders every series of the rig's registry.
func (r *rig) exposition(t *testing.T) string {
	t.Helper()
	families, err := r.reg.Gather()
	var buf strings.Builder
	for _, mf := range families {
		if err == nil {
			_, err = expfmt.MetricFamilyToText(&buf, mf)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// fleetSeries keeps the series that come from the fleet and the API's view
// (not the API's own health and request counters).
func fleetSeries(expo string) string {
	var out []string
	for _, line := range strings.Split(expo, "\n") {
		if strings.HasPrefix(line, "liveswitch_") && !strings.HasPrefix(line, "liveswitch_api_") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func (r *rig) tick() { r.poller.tick(context.Background()) }
