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

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
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

// simulatedApp is what the simulator reports of one application: its
// counts (events, failures, failure_causes, failure_phases, live) and its
// timings (setup, connection_duration:TYPE, channel_duration,
// channel_peak), by report line.
type simulatedApp struct {
	counts  map[string]map[string]float64
	timings map[string]timing
	// events is counts["events"].
	events map[string]float64
}

// timing is the count, sum and nearest-rank quantiles of a report line.
type timing struct {
	count         uint64
	sum, p50, p95 float64
}

var appLineRE = regexp.MustCompile(`^application (\S+) (\S+)((?: \S+=\S+)*)$`)

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
			a = &simulatedApp{counts: map[string]map[string]float64{}, timings: map[string]timing{}}
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
		if _, timed := fields["count"]; timed {
			a.timings[m[2]] = timing{uint64(fields["count"]), fields["sum"], fields["p50"], fields["p95"]}
		} else {
			a.counts[m[2]] = fields
		}
		a.events = a.counts["events"]
	}
	return apps
}

// compareApp checks every application series of app in families (one
// exporter's, or replicas' summed) against what the simulator reported.
func compareApp(t *testing.T, families map[string]*dto.MetricFamily, app string, s *simulatedApp) {
	t.Helper()
	for line, family := range map[string]struct{ name, by string }{
		"events":         {"liveswitch_application_events_total", "event"},
		"failures":       {"liveswitch_application_connection_failures_total", "connection_type"},
		"failure_causes": {"liveswitch_application_connection_failures_by_cause_total", "cause"},
		"failure_phases": {"liveswitch_application_connection_failures_by_phase_total", "phase"},
	} {
		compareCounts(t, families[family.name], app, family.by, s.counts[line])
	}
	for line, want := range s.timings {
		name, connType, _ := strings.Cut(line, ":")
		family := map[string]string{"setup": "liveswitch_application_connection_setup_seconds",
			"connection_duration": "liveswitch_application_connection_duration_seconds",
			"channel_duration":    "liveswitch_application_channel_duration_seconds",
			"channel_peak":        "liveswitch_application_channel_peak_clients"}[name]
		h := histogramOf(families[family], app, connType)
		if want.count == 0 && h == nil {
			continue
		}
		compareHistogram(t, family+"{"+app+" "+connType+"}", h, want)
	}
	live := s.counts["live"]
	for what, family := range map[string]string{"channels": "liveswitch_application_active_channels",
		"clients": "liveswitch_application_active_clients", "connections": "liveswitch_application_active_connections"} {
		if got := gaugeOf(families[family], app); got != live[what] {
			t.Errorf("%s{application_id=%q} = %v, the simulator left %v", family, app, got, live[what])
		}
	}
}

// histogramOf is app's histogram in mf, of connType when not empty.
func histogramOf(mf *dto.MetricFamily, app, connType string) *dto.Histogram {
	for _, m := range mf.GetMetric() {
		if label(m, "application_id") == app && (connType == "" || label(m, "connection_type") == connType) {
			return m.GetHistogram()
		}
	}
	return nil
}

func gaugeOf(mf *dto.MetricFamily, app string) float64 {
	for _, m := range mf.GetMetric() {
		if label(m, "application_id") == app {
			return m.GetGauge().GetValue()
		}
	}
	return -1
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

// compareHistogram checks a histogram: its count and sum are the
// simulator's, and its p50 and p95, as histogram_quantile estimates them,
// fall in the bucket of the simulator's exact ones.
func compareHistogram(t *testing.T, what string, h *dto.Histogram, s timing) {
	t.Helper()
	if h == nil || h.GetSampleCount() != s.count || math.Abs(h.GetSampleSum()-s.sum) > 1e-6 {
		t.Errorf("%s: %v, the simulator had %d summing to %.3f", what, h, s.count, s.sum)
		return
	}
	for _, q := range []struct {
		q     float64
		exact float64
	}{{0.5, s.p50}, {0.95, s.p95}} {
		estimate := histogramQuantile(q.q, h)
		lo, hi := bucketOf(h, q.exact)
		if estimate < lo || estimate > hi {
			t.Errorf("%s p%.0f: the exporter estimates %.3f, outside the bucket (%g, %g] of the simulator's %.3f", what, q.q*100, estimate, lo, hi, q.exact)
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

// TestSimulatedApplicationsMatchTheExporter runs the binary's simulator,
// signing and batching application webhooks of three applications, against
// the binary: every counter equals what the simulator reports it sent and
// had acknowledged; every histogram (setup, connection duration by type,
// channel duration and size) has the count and sum the simulator reports,
// and its quantiles fall in the simulator's buckets; the live levels are
// what the acknowledged events left.
func TestSimulatedApplicationsMatchTheExporter(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets.yml")
	writeSecrets(t, secrets, "app-alpha: alpha-7d2c\napp-beta: beta-41f9\napp-gamma: gamma-c03e\napp-unused: unused-0000\n")
	p := startExporter(t, "--webhook.application-secrets-file="+secrets)
	out, err := exec.Command(binary, "simulate", "--target", p.url("/webhook"), "--applications=3",
		"--application-secrets-file="+secrets, "--batch=10", "--rate=0", "--count=6000", "--concurrency=4", "--seed=5").CombinedOutput()
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^sent 6000 events in \S+: 6000 acknowledged`).Match(out) || !strings.Contains(string(out), "status 204: 6000\n") {
		t.Fatalf("simulate report:\n%s", out)
	}
	sent := parseSimulatedApps(t, string(out))
	if len(sent) != 3 || sent["app-unused"] != nil {
		t.Fatalf("the simulator reports applications %v, want the first 3 of the file", sent)
	}
	families := scrape(t, p)
	for app, s := range sent {
		t.Run(app, func(t *testing.T) { compareApp(t, families, app, s) })
	}
	// Application events taken are counted in their own families only;
	// liveswitch_exporter_events_total counts the fleet's (server) events
	// and the application events not taken (none here).
	var apps float64
	for _, s := range sent {
		for _, n := range s.events {
			apps += n
		}
	}
	outcomes := sumByLabel(families["liveswitch_exporter_events_total"], "outcome")
	fleet := outcomes["applied"] + outcomes["duplicate"] + outcomes["out_of_order"] + outcomes["ignored"]
	if apps == 0 || outcomes["invalid"] != 0 || outcomes["refused"] != 0 || fleet+apps != 6000 {
		t.Fatalf("liveswitch_exporter_events_total: %v with %v application events: want the other %v events there, none invalid or refused",
			outcomes, apps, 6000-apps)
	}
}

// TestSimulatedGatewayAgreesWithWebhookLevels: the simulated Gateway counts
// each application's active channels, clients and connections as its
// webhooks left them; once the simulator has sent everything, the
// exporter's levels from the webhooks equal the Gateway's counts it polls,
// application by application.
func TestSimulatedGatewayAgreesWithWebhookLevels(t *testing.T) {
	apiAddr := testenv.FreeAddr(t)
	p := startExporter(t, "--liveswitch.api-url=http://"+apiAddr+"/admin/api", "--liveswitch.api-key-file="+writeKeyFile(t),
		"--liveswitch.api-interval=200ms")
	sim := startSimulator(t, "--api-listen-address="+apiAddr, "--target="+p.url("/webhook"), "--applications=3",
		"--rate=0", "--count=3000", "--batch=10")
	testenv.WaitFor(t, 60*time.Second, "the simulator to send everything", func() bool { return strings.Contains(sim.log(), "Events sent") })
	sent := time.Now()
	levels := map[string][2]string{
		"channels":    {"liveswitch_application_channels", "liveswitch_application_active_channels"},
		"clients":     {"liveswitch_application_clients", "liveswitch_application_active_clients"},
		"connections": {"liveswitch_application_connections", "liveswitch_application_active_connections"},
	}
	var families map[string]*dto.MetricFamily
	testenv.WaitFor(t, 30*time.Second, "a poll of the Gateway after the last event", func() bool {
		families = scrape(t, p)
		mf := families["liveswitch_api_last_success_timestamp_seconds"]
		return mf != nil && mf.GetMetric()[0].GetGauge().GetValue() > float64(sent.UnixMilli())/1000
	})
	busy := 0.0
	for _, app := range []string{"sim-meetings", "sim-webinars", "sim-support"} {
		for what, pair := range levels {
			api, hooks := gaugeOf(families[pair[0]], app), gaugeOf(families[pair[1]], app)
			if api != hooks || api < 0 {
				t.Errorf("%s of %s: the Gateway counts %v, the webhooks leave %v", what, app, api, hooks)
			}
			busy += api
		}
	}
	if busy == 0 {
		t.Fatal("nothing active at the end of the run: the comparison shows nothing")
	}
}
