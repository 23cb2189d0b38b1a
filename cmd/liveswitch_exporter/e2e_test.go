package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// referenceExposition folds bodies into an in-memory fleet in this process
// and renders its metrics: what any exporter fed the same events must show.
func referenceExposition(t *testing.T, bodies [][]byte) string {
	t.Helper()
	f := fleet.New()
	w := writer.New(f, nil, writer.Options{Decode: event.DefaultDecodeOptions})
	defer w.Close()
	for _, b := range bodies {
		if _, err := w.Ingest(context.Background(), b); err != nil {
			t.Fatalf("reference fleet rejected %s: %v", b, err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.NewCollector(f))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// TestSimulatedFleetMatchesReference drives the real binary with a simulated
// fleet's life and checks every fleet series against the same events folded
// in-process.
func TestSimulatedFleetMatchesReference(t *testing.T) {
	p := startExporter(t)
	gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
	bodies := make([][]byte, 400)
	for i := range bodies {
		bodies[i] = gen.Next().Body
		if code := post(t, p.url("/webhook"), bodies[i]); code != http.StatusNoContent && code != http.StatusAccepted {
			t.Fatalf("event %d answered %d: %s", i, code, bodies[i])
		}
	}
	code, got := get(p.url("/metrics"))
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	want := fleetSection(referenceExposition(t, bodies))
	if fleetSection(got) != want {
		t.Fatalf("fleet series differ from the reference.\ngot:\n%s\nwant:\n%s", fleetSection(got), want)
	}
	servers := strings.Count(want, "\nliveswitch_server_up{")
	if servers != gen.Size() {
		t.Fatalf("%d servers exported, the simulated fleet has %d", servers, gen.Size())
	}
}

// TestSimulateCommand runs the simulate sub-command of the binary against
// the binary, concurrently, and checks that the whole fleet arrived.
func TestSimulateCommand(t *testing.T) {
	p := startExporter(t)
	out, err := testenv.DieWithTest(exec.Command(binary, "simulate", "--target", p.url("/webhook"),
		"--rate=0", "--count=600", "--concurrency=8", "--seed=7")).CombinedOutput()
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`sent 600 events in \S+: 600 acknowledged`).Match(out) {
		t.Fatalf("simulate report:\n%s", out)
	}
	families := scrape(t, p)
	// The default fleet: 2 deployments × (2 gateways + 3 regions × 3 media
	// servers + 1 SIP connector + 3 recording services) = 30 servers.
	if n := len(families["liveswitch_server_up"].GetMetric()); n != 30 {
		t.Fatalf("%d servers tracked after the simulation, want 30", n)
	}
	// Every one of the 600 events was counted once, and none as invalid.
	outcomes := sumByLabel(families["liveswitch_exporter_events_total"], "outcome")
	if invalid, ok := outcomes["invalid"]; !ok || invalid != 0 {
		t.Errorf("liveswitch_exporter_events_total{outcome=\"invalid\"} = %v (exported: %t), want 0", invalid, ok)
	}
	var total float64
	for _, n := range outcomes {
		total += n
	}
	if total != 600 {
		t.Errorf("liveswitch_exporter_events_total sums to %v over %v, want 600", total, outcomes)
	}
}

// TestSimulateSendsTheToken: simulate authenticates with --token, or its
// variable LIVESWITCH_EXPORTER_TOKEN, to an exporter that requires one.
func TestSimulateSendsTheToken(t *testing.T) {
	const token = "sim-token-3b8e"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, "--webhook.token-file="+file)
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		acked bool
	}{
		{"flag", []string{"--token=" + token}, nil, true},
		{"environment", nil, []string{"LIVESWITCH_EXPORTER_TOKEN=" + token}, true},
		{"none", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := testenv.DieWithTest(exec.Command(binary, append([]string{"simulate", "--target", p.url("/webhook"), "--rate=0", "--count=20"}, tc.args...)...))
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if acked := regexp.MustCompile(`: 20 acknowledged`).Match(out); acked != tc.acked || (err == nil) != tc.acked {
				t.Fatalf("acknowledged: %t, want %t (%v)\n%s", acked, tc.acked, err, out)
			}
		})
	}
}

// TestPromtoolCheckMetrics lints a real scrape with Prometheus' own checker.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := requireTool(t, "promtool")
	p := startExporter(t)
	feedSimulated(t, p, 200)
	post(t, p.url("/webhook"), []byte(`{"broken":`))
	_, metrics := get(p.url("/metrics"))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// scenario posts a small fleet with a known number of registered media
// servers: three registered in us-east, one that started but never
// registered, one that unregistered, one that stopped cleanly.
func scenario(t *testing.T, p *process) (registered int) {
	t.Helper()
	now := time.Now().Add(-time.Minute).UnixMilli()
	ev := func(dt int64, id, action string) []byte {
		return fmt.Appendf(nil, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s",`+
			`"mediaserver":{"id":%q,"machineName":"ms-%s","region":"us-east","deploymentId":"prod","coreCount":8}}`,
			now+dt, action, id, id)
	}
	for i, step := range []struct {
		id      string
		actions []string
	}{
		{"a", []string{"started", "registered"}},
		{"b", []string{"started", "registered"}},
		{"c", []string{"started", "registered", "unregistered", "registered"}},
		{"d", []string{"started"}},
		{"e", []string{"started", "registered", "unregistered"}},
		{"f", []string{"started", "registered", "unregistered", "stopped"}},
	} {
		for j, a := range step.actions {
			if code := post(t, p.url("/webhook"), ev(int64(i*10+j), step.id, a)); code != http.StatusNoContent {
				t.Fatalf("%s %s: %d", step.id, a, code)
			}
		}
	}
	return 3
}

// TestPrometheusScrapesExporter has a real Prometheus scrape the exporter
// and answers a PromQL query over its HTTP API.
func TestPrometheusScrapesExporter(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	promBin := requireTool(t, "prometheus")
	p := startExporter(t)
	want := scenario(t, p)
	prom := startPrometheus(t, promBin, p.addr, nil)
	query := `sum(liveswitch_servers{origin="mediaserver",state="registered"})`
	var last string
	testenv.WaitFor(t, 60*time.Second, "Prometheus to scrape the exporter", func() bool {
		v, ok := promQuery(prom, query)
		last = v
		return ok && v == strconv.Itoa(want)
	})
	if last != strconv.Itoa(want) {
		t.Fatalf("%s = %s, want %d", query, last, want)
	}
	if v, _ := promQuery(prom, `sum(liveswitch_server_registration_flaps_total)`); v != "1" {
		t.Fatalf("flaps = %s, want 1", v)
	}
	if v, _ := promQuery(prom, `sum(liveswitch_server_state{origin="mediaserver",state=~"running|unregistered"})`); v != "2" {
		t.Fatalf("up but unregistered = %s, want 2", v)
	}
}

// startPrometheus runs a real Prometheus scraping target every second, with
// the given rule files, and returns its base URL.
func startPrometheus(t *testing.T, bin, target string, ruleFiles []string) string {
	t.Helper()
	return runPrometheus(t, bin, prometheusConfig(target, ruleFiles))
}

// prometheusConfig scrapes target and evaluates the rules every second.
func prometheusConfig(target string, ruleFiles []string) string {
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"+
		"scrape_configs:\n  - job_name: liveswitch\n    static_configs:\n      - targets: ['%s']\n", target)
	if len(ruleFiles) > 0 {
		cfg += "rule_files:\n"
		for _, f := range ruleFiles {
			cfg += fmt.Sprintf("  - %q\n", f)
		}
	}
	return cfg
}

// runPrometheus runs a real Prometheus with the configuration cfg and
// returns its base URL once it is ready.
func runPrometheus(t *testing.T, bin, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	runReady(t, "Prometheus", addr, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	return "http://" + addr
}

// runReady runs one of Prometheus' programs listening on addr, until the
// test ends, and waits until its /-/ready answers 200. Its log is shown if
// the test fails.
func runReady(t *testing.T, name, addr, bin string, args ...string) {
	t.Helper()
	cmd := testenv.DieWithTest(exec.Command(bin, args...))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	testenv.WaitFor(t, 60*time.Second, name+" ready", func() bool {
		code, _ := get("http://" + addr + "/-/ready")
		return code == http.StatusOK
	})
}

// promQuery evaluates an instant query and returns the value of its single
// sample.
func promQuery(base, query string) (string, bool) {
	code, body := get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if code != http.StatusOK {
		return "", false
	}
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Data.Result) != 1 {
		return "", false
	}
	v, ok := resp.Data.Result[0].Value[1].(string)
	return v, ok
}

// TestGracefulShutdown: SIGTERM ends the exporter with status 0.
func TestGracefulShutdown(t *testing.T) {
	p := startExporter(t)
	if err := p.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	if !strings.Contains(p.log(), "Shutting down") {
		t.Fatalf("no shutdown line in the log:\n%s", p.log())
	}
}

// TestFlagsFromEnvironment: every flag can be set through the environment.
func TestFlagsFromEnvironment(t *testing.T) {
	p := startExporterEnv(t, []string{
		"LIVESWITCH_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:0",
		"LIVESWITCH_EXPORTER_WEB_TELEMETRY_PATH=/custom-metrics",
		"LIVESWITCH_EXPORTER_LOG_FORMAT=json",
		"LIVESWITCH_EXPORTER_STORAGE_PATH=" + t.TempDir(),
	})
	if code, body := get(p.url("/custom-metrics")); code != http.StatusOK || !strings.Contains(body, "liveswitch_exporter_build_info") {
		t.Fatalf("/custom-metrics: %d", code)
	}
	if !strings.Contains(p.log(), `"msg":"Listening on"`) {
		t.Fatalf("log is not JSON:\n%s", p.log())
	}
}
