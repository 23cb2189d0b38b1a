package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// scrape parses the exporter's /metrics.
func scrape(t testing.TB, p *process) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(p.url("/metrics"))
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// perServer sums a family's values by the server's id label.
func perServer(mf *dto.MetricFamily) map[string]float64 { return sumByLabel(mf, "id") }

// sumByLabel sums a family's values (gauges and counters) by one label.
func sumByLabel(mf *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var value string
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				value = l.GetValue()
			}
		}
		out[value] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return out
}

// ackLedger records, per server, what the exporter acknowledged.
type ackLedger struct {
	mu       sync.Mutex
	count    map[string]int   // acknowledged events, over all runs
	lastMs   map[string]int64 // newest acknowledged event time
	next     map[string]int64 // next event time to use
	statuses map[int]int      // answers by HTTP status
}

func newAckLedger() *ackLedger {
	return &ackLedger{count: map[string]int{}, lastMs: map[string]int64{}, next: map[string]int64{}, statuses: map[int]int{}}
}

// acked is the number of acknowledged events so far.
func (l *ackLedger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[http.StatusNoContent]
}

func (l *ackLedger) statusCount(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[code]
}

// waitAcked polls until n events in all were acknowledged.
func (l *ackLedger) waitAcked(t testing.TB, n int) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("%d acknowledged events", n), func() bool { return l.acked() >= n })
}

// waitStatus polls until some webhook was answered code.
func (l *ackLedger) waitStatus(t testing.TB, code int) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("an answer %d", code), func() bool { return l.statusCount(code) > 0 })
}

// TestCrashLosesNoAcknowledgedEvent kills the exporter with SIGKILL at random
// moments while 16 senders post events, restarts it on the same store, and
// checks that every acknowledged event is reflected in /metrics.
func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	const runs, senders, serversPerSender = 10, 16, 4
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	ledger := newAckLedger()
	base := time.Now().Add(-time.Hour).UnixMilli()
	for run := range runs {
		p := startExporter(t, "--storage.path="+dir)
		if run > 0 {
			checkLedger(t, p, ledger)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				sendUntilStopped(func() string { return p.url("/webhook") }, ledger, s, serversPerSender, base, stop)
			})
		}
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond) // the kill point, not a synchronisation
		p.kill(t)
		close(stop)
		wg.Wait()
	}
	p := startExporter(t, "--storage.path="+dir)
	checkLedger(t, p, ledger)
	total := 0
	for _, n := range ledger.count {
		total += n
	}
	if total == 0 {
		t.Fatal("no event was acknowledged")
	}
	t.Logf("%d runs killed with SIGKILL; %d acknowledged events checked", runs, total)
}

// sendUntilStopped posts events for the sender's servers, in order, each to
// the exporter target names, until stop is closed; an exporter that does not
// answer is tried again with the next event. Each server cycles through its
// lifecycle.
func sendUntilStopped(target func() string, l *ackLedger, sender, servers int, base int64, stop <-chan struct{}) {
	actions := []string{"started", "registered", "unregistered", "registered", "unregistered", "stopped"}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("s%02d-%d", sender, i%servers)
		l.mu.Lock()
		ts := max(l.next[id], base)
		l.next[id] = ts + 1
		l.mu.Unlock()
		body := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":%q,"region":"r"}}`,
			ts, actions[(ts-base)%int64(len(actions))], id)
		resp, err := client.Post(target(), "application/json", strings.NewReader(body))
		if err != nil {
			continue // down: keep trying until told to stop
		}
		resp.Body.Close()
		l.mu.Lock()
		l.statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusNoContent {
			l.count[id]++
			l.lastMs[id] = max(l.lastMs[id], ts)
		}
		l.mu.Unlock()
	}
}

func checkLedger(t *testing.T, p *process, l *ackLedger) {
	t.Helper()
	families := scrape(t, p)
	events := perServer(families["liveswitch_server_events_total"])
	last := perServer(families["liveswitch_server_last_event_timestamp_seconds"])
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, n := range l.count {
		if events[id] < float64(n) {
			t.Errorf("server %s: %v events applied, %d were acknowledged", id, events[id], n)
		}
		if last[id]*1000 < float64(l.lastMs[id]) {
			t.Errorf("server %s: last event %v, an event of %d was acknowledged", id, last[id], l.lastMs[id])
		}
	}
}

// TestRestartKeepsFleet: after a clean restart on the same store the fleet
// series are identical, timestamps and counters included.
func TestRestartKeepsFleet(t *testing.T) {
	dir := t.TempDir()
	p := startExporter(t, "--storage.path="+dir)
	out, err := exec.Command(binary, "simulate", "--target", p.url("/webhook"), "--rate=0", "--count=500", "--concurrency=8").CombinedOutput()
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	_, before := get(p.url("/metrics"))
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	p = startExporter(t, "--storage.path="+dir)
	_, after := get(p.url("/metrics"))
	if fleetSection(before) != fleetSection(after) || !strings.Contains(after, "liveswitch_server_up{") {
		t.Fatalf("fleet changed across a restart.\nbefore:\n%s\nafter:\n%s", fleetSection(before), fleetSection(after))
	}
}

// runToExit runs the exporter expecting it to stop by itself.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("exporter kept running:\n%s", out)
	}
	if err == nil {
		return 0, string(out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestUnusableStoreStopsTheExporter(t *testing.T) {
	locked := t.TempDir()
	startExporter(t, "--storage.path="+locked)
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "liveswitch_exporter.db"), []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, says string }{
		{"locked by another exporter", locked, "locked by another process"},
		{"corrupt file", corrupt, "opening storage file"},
		{"directory cannot be created", filepath.Join(file, "data"), "creating storage directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runToExit(t, "--storage.path="+tc.dir)
			if code == 0 {
				t.Fatalf("exit status 0:\n%s", out)
			}
			var errors []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "level=ERROR") {
					errors = append(errors, line)
				}
			}
			if len(errors) != 1 || !strings.Contains(errors[0], tc.says) {
				t.Fatalf("want one error line saying %q:\n%s", tc.says, out)
			}
		})
	}
}

func TestInMemoryModeSaysSo(t *testing.T) {
	for _, args := range [][]string{{"--storage.in-memory"}, {"--storage.path="}} {
		p := startExporter(t, args...)
		if !strings.Contains(p.log(), "kept in memory only") {
			t.Fatalf("%v: no warning in the log:\n%s", args, p.log())
		}
	}
}
