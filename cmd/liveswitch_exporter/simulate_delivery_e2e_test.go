package main

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// simRun is a running `simulate`, its report (stdout) and log (stderr) kept.
type simRun struct {
	cmd            *exec.Cmd
	stdout, stderr testenv.LogBuffer
	exit           chan struct{}
	err            error
}

// runSimulate starts `simulate` with args; it is killed when the test ends,
// and with the test's process.
func runSimulate(t *testing.T, args ...string) *simRun {
	t.Helper()
	s := &simRun{cmd: exec.Command(binary, append([]string{"simulate"}, args...)...), exit: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	testenv.DieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exit) }()
	t.Cleanup(func() {
		if !s.exited() {
			_ = s.cmd.Process.Kill()
			<-s.exit
		}
		if t.Failed() {
			t.Logf("simulate report:\n%s\nsimulate log:\n%s", s.stdout.String(), s.stderr.String())
		}
	})
	return s
}

func (s *simRun) exited() bool {
	select {
	case <-s.exit:
		return true
	default:
		return false
	}
}

// wait waits for the simulator to end by itself and fails if it did not
// exit cleanly.
func (s *simRun) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, "the simulator to end", s.exited)
	if s.err != nil {
		t.Fatalf("simulate: %v", s.err)
	}
}

var (
	reportRE  = regexp.MustCompile(`(?m)^sent (\d+) events in \S+: (\d+) acknowledged \(\S+ events/s\), (\d+) rejected, (\d+) lost$`)
	retriesRE = regexp.MustCompile(`(?m)^retries: (\d+)`)
	// serverRE is a debug line of the simulator's final fleet.
	serverRE = regexp.MustCompile(`msg="Simulated server as acknowledged" origin=(\S+) id=(\S+) state=(\S+)`)
)

// simReport is the simulator's first report lines, in numbers.
type simReport struct{ sent, acked, rejected, lost, retries int }

func (s *simRun) report(t *testing.T) simReport {
	t.Helper()
	out := s.stdout.String()
	m, r := reportRE.FindStringSubmatch(out), retriesRE.FindStringSubmatch(out)
	if m == nil || r == nil {
		t.Fatalf("no report:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return simReport{sent: n(m[1]), acked: n(m[2]), rejected: n(m[3]), lost: n(m[4]), retries: n(r[1])}
}

// fleet is the simulator's fleet as acknowledged, "origin/id" -> state, from
// its debug log.
func (s *simRun) fleet() map[string]string {
	fleet := map[string]string{}
	for _, m := range serverRE.FindAllStringSubmatch(s.stderr.String(), -1) {
		fleet[m[1]+"/"+m[2]] = m[3]
	}
	return fleet
}

// exportedStates is each server's state as the exporter shows it.
func exportedStates(families map[string]*dto.MetricFamily) map[string]string {
	states := map[string]string{}
	for _, m := range families["liveswitch_server_state"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			states[label(m, "origin")+"/"+label(m, "id")] = label(m, "state")
		}
	}
	return states
}

// TestSimulatorStartedFirstLosesNothing: a simulator started 10 s before
// the exporter (stormy fleet, application webhooks, batches) retries what
// got no answer, and once the exporter is up, delivers everything: the
// report says 0 lost, every acknowledged event is counted once, each
// server (gateways included) is in the state the simulator left it in,
// and each application's counts are the simulator's.
func TestSimulatorStartedFirstLosesNothing(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	start := time.Now()
	sim := runSimulate(t, "--target=http://"+addr+"/webhook", "--scenario=stormy", "--rate=40", "--count=600",
		"--concurrency=4", "--batch=3", "--applications=2", "--seed=11", "--log.level=debug")
	testenv.WaitFor(t, 60*time.Second, "the simulator to have retried for 10 s", func() bool {
		return time.Since(start) >= 10*time.Second && strings.Contains(sim.stderr.String(), "retrying")
	})
	if sim.exited() {
		t.Fatal("the simulator gave up before the exporter started")
	}
	p := startExporterEnv(t, nil, "--web.listen-address="+addr, "--storage.path="+t.TempDir())
	sim.wait(t, 120*time.Second)

	rep := sim.report(t)
	if rep.sent != 600 || rep.acked != 600 || rep.rejected != 0 || rep.lost != 0 || rep.retries == 0 ||
		!strings.Contains(sim.stdout.String(), "\nlost: 0 (") {
		t.Fatalf("report %+v:\n%s", rep, sim.stdout.String())
	}
	t.Logf("%d events, %d retries", rep.sent, rep.retries)

	families := scrape(t, p)
	apps := parseSimulatedApps(t, sim.stdout.String())
	appEvents := 0.0
	for app, s := range apps {
		compareCounts(t, families["liveswitch_application_events_total"], app, "event", s.events)
		for _, n := range s.events {
			appEvents += n
		}
	}
	outcomes := sumByLabel(families["liveswitch_exporter_events_total"], "outcome")
	if len(apps) != 2 || outcomes["duplicate"]+outcomes["out_of_order"]+outcomes["invalid"]+outcomes["refused"] != 0 ||
		outcomes["applied"] == 0 || outcomes["applied"]+outcomes["ignored"]+appEvents != 600 {
		t.Fatalf("liveswitch_exporter_events_total %v and %v application events for 600 acknowledged", outcomes, appEvents)
	}
	want, got := sim.fleet(), exportedStates(families)
	if len(want) != 30 || !maps.Equal(got, want) {
		t.Fatalf("the exporter shows %d servers, the simulator left %d:\nexporter  %v\nsimulator %v", len(got), len(want), got, want)
	}
}

// TestSimulatedGatewayAndWebhooksShareApplications: with --applications
// and --api-listen-address, the applications the exporter learns from the
// simulated Gateway's REST API are those whose webhooks it counts.
func TestSimulatedGatewayAndWebhooksShareApplications(t *testing.T) {
	apiAddr := testenv.FreeAddr(t)
	p := startExporter(t, "--liveswitch.api-url=http://"+apiAddr+"/admin/api", "--liveswitch.api-key-file="+writeKeyFile(t),
		"--liveswitch.api-interval=250ms")
	startSimulator(t, "--api-listen-address="+apiAddr, "--target="+p.url("/webhook"), "--applications=3",
		"--rate=0", "--count=400")
	ids := func(mf *dto.MetricFamily) []string {
		set := map[string]bool{}
		for _, m := range mf.GetMetric() {
			set[label(m, "application_id")] = true
		}
		return slices.Sorted(maps.Keys(set))
	}
	var fromAPI, fromWebhooks []string
	testenv.WaitFor(t, 60*time.Second, "applications from the API and from webhooks", func() bool {
		families := scrape(t, p)
		fromAPI, fromWebhooks = ids(families["liveswitch_application_connections"]), ids(families["liveswitch_application_events_total"])
		return len(fromAPI) > 0 && len(fromWebhooks) == 3
	})
	if want := []string{"sim-meetings", "sim-support", "sim-webinars"}; !slices.Equal(fromAPI, want) || !slices.Equal(fromWebhooks, want) {
		t.Fatalf("applications from the Gateway's API %v, from webhooks %v; want both %v", fromAPI, fromWebhooks, want)
	}
}

// TestSimulateRunsUntilInterrupted: by default the simulator runs until
// Ctrl-C, and SIGINT ends it cleanly, with its report: every event it says
// acknowledged is counted by the exporter.
func TestSimulateRunsUntilInterrupted(t *testing.T) {
	p := startExporter(t)
	sim := runSimulate(t, "--target="+p.url("/webhook"), "--rate=50")
	testenv.WaitFor(t, 60*time.Second, "100 events taken", func() bool { return eventsCounted(t, p) >= 100 })
	if err := sim.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	sim.wait(t, 30*time.Second)
	rep, counted := sim.report(t), eventsCounted(t, p)
	// An event whose request was cut by the interrupt may have been taken
	// all the same: reported undelivered, counted by the exporter.
	if rep.acked < 100 || rep.acked+rep.lost != rep.sent || counted < float64(rep.acked) || counted > float64(rep.sent) ||
		!strings.Contains(sim.stdout.String(), " (0 still failing after retrying") {
		t.Fatalf("report %+v, the exporter counted %v events:\n%s", rep, counted, sim.stdout.String())
	}
	if log := sim.stderr.String(); !strings.Contains(log, "scenario=healthy") || !strings.Contains(log, "Running until stopped") {
		t.Fatalf("log:\n%s", log)
	}
}

// eventsCounted is how many server events p counted, whatever it did with
// them.
func eventsCounted(t *testing.T, p *process) float64 {
	total := 0.0
	for _, n := range sumByLabel(scrape(t, p)["liveswitch_exporter_events_total"], "outcome") {
		total += n
	}
	return total
}

// TestSimulateScenarioFlag: the fleet is healthy unless asked otherwise, by
// flag or by LIVESWITCH_EXPORTER_SCENARIO; other scenarios are refused.
func TestSimulateScenarioFlag(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "healthy"},
		{nil, []string{"--scenario=stormy"}, "stormy"},
		{map[string]string{envPrefix + "_SCENARIO": "stormy"}, nil, "stormy"},
	} {
		c, _, err := parseWithEnv(t, tc.env, append([]string{"simulate"}, tc.args...))
		if err != nil || c.Simulate.Scenario != tc.want {
			t.Errorf("%v %v: scenario %q (%v), want %q", tc.env, tc.args, c.Simulate.Scenario, err, tc.want)
		}
	}
	if _, _, err := parseWithEnv(t, nil, []string{"simulate", "--scenario=calm"}); err == nil {
		t.Error("--scenario=calm was taken")
	}
	out, err := exec.Command(binary, "simulate", "--retry-for=-1s", "--count=1").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "--retry-for must not be negative") {
		t.Errorf("--retry-for=-1s: %v\n%s", err, out)
	}
}
