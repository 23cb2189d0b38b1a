package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	cmd := testenv.DieWithTest(exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...))
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
	if err := os.WriteFile(filepath.Join(corrupt, "store.json"), []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, says string }{
		{"locked by another exporter", locked, "locked by another process"},
		{"corrupt file", corrupt, "store damaged: " + filepath.Join(corrupt, "store.json") + ": not a store marker"},
		{"directory cannot be created", filepath.Join(file, "data"), "creating storage directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runToExit(t, "--storage.path="+tc.dir)
			if code == 0 {
				t.Fatalf("exit status 0:\n%s", out)
			}
			errors := errorLines(out)
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
