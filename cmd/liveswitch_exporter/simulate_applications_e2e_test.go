package main

import (
	"bufio"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// feedSimulatedApplications posts the first n events of three simulated
// applications, unsigned, on a clock that steps 10 ms an event, so that
// the events are the same at every run: seed 1 has connections connect and
// fail within 1,000 events.
func feedSimulatedApplications(t testing.TB, p *process, n int) {
	t.Helper()
	clock := time.Now()
	gen := simulate.NewAppGenerator(simulate.AppConfig{Seed: 1, IDs: []string{"app-1", "app-2", "app-3"}},
		func() time.Time { clock = clock.Add(10 * time.Millisecond); return clock })
	for range n {
		if code := post(t, p.url("/webhook"), gen.Next().Body); code != http.StatusNoContent {
			t.Fatalf("application event answered %d", code)
		}
	}
}

// simulatedApp is what the simulator reports of one application.
type simulatedApp struct {
	events, failures map[string]float64
	setupCount       uint64
	setupSum         float64
	p50, p95         float64
}

var appLineRE = regexp.MustCompile(`^application (\S+) (events|failures|setup)((?: \S+=\S+)*)$`)

// parseSimulatedApps reads the application lines of simulate's report.
func parseSimulatedApps(t *testing.T, out string) map[string]*simulatedApp {
	t.Helper()
	apps := map[string]*simulatedApp{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := appLineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		a := apps[m[1]]
		if a == nil {
			a = &simulatedApp{events: map[string]float64{}, failures: map[string]float64{}}
			apps[m[1]] = a
		}
		fields := map[string]float64{}
		for _, kv := range strings.Fields(m[3]) {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
			if err != nil {
				t.Fatalf("report line %q: %v", sc.Text(), err)
			}
			fields[k] = n
		}
		switch m[2] {
		case "events":
			a.events = fields
		case "failures":
			a.failures = fields
		case "setup":
			a.setupCount, a.setupSum, a.p50, a.p95 = uint64(fields["count"]), fields["sum"], fields["p50"], fields["p95"]
		}
	}
	return apps
}

// TestSimulatedApplicationsMatchTheExporter runs the binary's simulator,
// signing and batching application webhooks of three applications, against
// the binary: every counter equals what the simulator reports it sent and
// had acknowledged, and so do the setup times, to the histogram's
// resolution.
func TestSimulatedApplicationsMatchTheExporter(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets.yml")
	writeSecrets(t, secrets, "app-alpha: alpha-7d2c\napp-beta: beta-41f9\napp-gamma: gamma-c03e\napp-unused: unused-0000\n")
	p := startExporter(t, "--webhook.application-secrets-file="+secrets)
	out, err := exec.Command(binary, "simulate", "--target", p.url("/webhook"), "--applications=3",
		"--application-secrets-file="+secrets, "--batch=10", "--rate=0", "--count=4000", "--concurrency=4", "--seed=5").CombinedOutput()
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^sent 4000 events in \S+: 4000 acknowledged`).Match(out) || !strings.Contains(string(out), "status 204: 4000\n") {
		t.Fatalf("simulate report:\n%s", out)
	}
	sent := parseSimulatedApps(t, string(out))
	if len(sent) != 3 || sent["app-unused"] != nil {
		t.Fatalf("the simulator reports applications %v, want the first 3 of the file", sent)
	}
	families := scrape(t, p)
	for app, s := range sent {
		t.Run(app, func(t *testing.T) {
			compareCounts(t, families["liveswitch_application_events_total"], app, "event", s.events)
			compareCounts(t, families["liveswitch_application_connection_failures_total"], app, "connection_type", s.failures)
			compareSetup(t, families["liveswitch_application_connection_setup_seconds"], app, s)
		})
	}
	// Application events taken are counted in their own families only;
	// liveswitch_exporter_events_total counts the fleet's (server) events.
	var apps float64
	for _, s := range sent {
		for _, n := range s.events {
			apps += n
		}
	}
	outcomes := sumByLabel(families["liveswitch_exporter_events_total"], "outcome")
	fleet := outcomes["applied"] + outcomes["duplicate"] + outcomes["out_of_order"] + outcomes["ignored"]
	if apps == 0 || outcomes["invalid"] != 0 || outcomes["refused"] != 0 || fleet+apps != 4000 {
		t.Fatalf("liveswitch_exporter_events_total: %v with %v application events: want the other %v events there, none invalid or refused",
			outcomes, apps, 4000-apps)
	}
}

// compareCounts checks the series of app in mf, by the label by, against want:
// every one the simulator counted, and nothing else but zeros.
func compareCounts(t *testing.T, mf *dto.MetricFamily, app, by string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	for _, m := range mf.GetMetric() {
		if label(m, "application_id") == app {
			got[label(m, by)] = m.GetCounter().GetValue()
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s{application_id=%q,%s=%q} = %v, the simulator had %v acknowledged", mf.GetName(), app, by, k, got[k], n)
		}
	}
	for k, n := range got {
		if _, sent := want[k]; !sent && n != 0 {
			t.Errorf("%s{application_id=%q,%s=%q} = %v, the simulator sent none", mf.GetName(), app, by, k, n)
		}
	}
}

// compareSetup checks app's setup histogram: its count and sum are the
// simulator's, and its p50 and p95, as histogram_quantile estimates them,
// fall in the bucket of the simulator's exact ones.
func compareSetup(t *testing.T, mf *dto.MetricFamily, app string, s *simulatedApp) {
	t.Helper()
	var h *dto.Histogram
	for _, m := range mf.GetMetric() {
		if label(m, "application_id") == app {
			h = m.GetHistogram()
		}
	}
	if h == nil || h.GetSampleCount() != s.setupCount || math.Abs(h.GetSampleSum()-s.setupSum) > 1e-6 {
		t.Fatalf("setup histogram %v, the simulator timed %d connections summing to %.3fs", h, s.setupCount, s.setupSum)
	}
	for _, q := range []struct {
		q     float64
		exact float64
	}{{0.5, s.p50}, {0.95, s.p95}} {
		estimate := histogramQuantile(q.q, h)
		lo, hi := bucketOf(h, q.exact)
		if estimate < lo || estimate > hi {
			t.Errorf("p%.0f: the exporter estimates %.3fs, outside the bucket (%g, %g] of the simulator's %.3fs", q.q*100, estimate, lo, hi, q.exact)
		}
	}
}

// bucketOf returns the bounds (lower, upper] of the bucket holding v.
func bucketOf(h *dto.Histogram, v float64) (float64, float64) {
	lower := 0.0
	for _, b := range h.GetBucket() {
		if v <= b.GetUpperBound() {
			return lower, b.GetUpperBound()
		}
		lower = b.GetUpperBound()
	}
	return lower, math.Inf(1)
}

// histogramQuantile is PromQL's histogram_quantile over one histogram:
// linear interpolation within the bucket where the rank falls.
func histogramQuantile(q float64, h *dto.Histogram) float64 {
	rank := q * float64(h.GetSampleCount())
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		count := float64(b.GetCumulativeCount())
		if count >= rank {
			return lower + (b.GetUpperBound()-lower)*(rank-below)/(count-below)
		}
		lower, below = b.GetUpperBound(), count
	}
	return lower
}

// TestSimulateApplicationFlags: contradictory simulate flags are refused
// with a reason.
func TestSimulateApplicationFlags(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets.yml")
	writeSecrets(t, secrets, "only-one: s\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--applications=2", "--application-secrets-file=" + secrets}, "holds 1 applications, fewer than --applications=2"},
		{[]string{"--application-secrets-file=" + secrets}, "--application-secrets-file needs --applications"},
		{[]string{"--applications=1", "--pushgateway"}, "--pushgateway simulates the fleet only"},
		{[]string{"--batch=0"}, "--batch must be at least 1"},
	} {
		out, err := exec.Command(binary, append([]string{"simulate", "--target=http://127.0.0.1:1/webhook", "--count=1"}, tc.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("simulate %s: %v, want an error containing %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
}
