package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxApplicationRSS is the resident memory an exporter stays under, with
// its default bounds and GOGC, whatever the application webhooks it is
// sent: the figure docs/applications.md states (338 MiB measured for
// 1,000,000 channels and connections; 158 MiB with GOGC=100).
const maxApplicationRSS = 384 << 20

// rss is the resident set of process p, from /proc, in bytes.
func rss(t *testing.T, p *process) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestApplicationMemoryBounded: channels activate and connections
// initialize and never end (1,000,000 of each with LIVESWITCH_TEST_LONG=1,
// 200,000 otherwise), each event distinct, all within the last 50 minutes:
// the exporter's tables stay at their caps, evicting the rest, and its
// resident memory under maxApplicationRSS. Run with -v for the figures.
func TestApplicationMemoryBounded(t *testing.T) {
	total := 200_000
	if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
		total = 1_000_000
	}
	p := startExporter(t, "--storage.in-memory", "--storage.path=")
	start := rss(t, p)
	now := time.Now().UnixMilli()
	const batch = 500
	var body bytes.Buffer
	peak := start
	for i := 0; i < total; i += batch {
		body.Reset()
		body.WriteByte('[')
		for j := i; j < i+batch; j++ {
			if j > i {
				body.WriteByte(',')
			}
			app := "app-" + strconv.Itoa(j%3)
			ms := now - int64(j%3000)*1000
			fmt.Fprintf(&body, `{"timestamp":%d,"type":"channel.activated","channel":{"applicationId":%q,"id":"ch-%08x-4a7e-9a51-2f3c6e0d9a10"}},`, ms, app, j)
			fmt.Fprintf(&body, `{"timestamp":%d,"type":"connection.initializing","connection":{"applicationId":%q,"id":"c-%08x-4a7e-9a51-2f3c6e0d9a10","type":"sfu"}}`, ms, app, j)
		}
		body.WriteByte(']')
		if code := post(t, p.url("/webhook"), body.Bytes()); code != http.StatusNoContent {
			t.Fatalf("batch %d answered %d", i/batch, code)
		}
		if (i/batch)%50 == 0 {
			peak = max(peak, rss(t, p))
		}
	}
	end := rss(t, p)
	peak = max(peak, end)
	families := scrape(t, p)
	held := map[string]float64{}
	for _, m := range families["liveswitch_exporter_application_entries"].GetMetric() {
		held[label(m, "table")] = m.GetGauge().GetValue()
	}
	remembered := families["liveswitch_exporter_application_events_remembered"].GetMetric()[0].GetGauge().GetValue()
	t.Logf("RSS %.0f MiB at start, %.0f MiB at most, %.0f MiB after %d channels and %d connections that never end; held %v, %.0f events remembered",
		float64(start)/(1<<20), float64(peak)/(1<<20), float64(end)/(1<<20), total, total, held, remembered)
	if held["channels"] != 100000 || held["connections"] != 100000 {
		t.Fatalf("held %v: want the caps (100,000 of each)", held)
	}
	if peak > maxApplicationRSS {
		t.Fatalf("resident memory reached %.0f MiB, over the stated %d MiB", float64(peak)/(1<<20), maxApplicationRSS>>20)
	}
}
