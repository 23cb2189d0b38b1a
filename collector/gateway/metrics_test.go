package gateway

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestPollerMetricsGolden holds the poller's own series (per replica) to
// testdata/poller_metrics.golden after one good poll: their names, help,
// labels and the series that exist from the start. Request durations vary,
// so only their help and type are compared.
func TestPollerMetricsGolden(t *testing.T) {
	r := newRig(t, nil)
	r.tick()
	ours := []string{"liveswitch_api_requests_total", "liveswitch_api_request_duration_seconds",
		"liveswitch_api_invalid_items_total", "liveswitch_api_applications_unread"}
	var lines []string
	for _, line := range strings.SplitAfter(r.exposition(t), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if slices.ContainsFunc(ours, func(o string) bool { return strings.HasPrefix(name, o+" ") || strings.HasPrefix(name, o+"{") }) &&
			!strings.HasPrefix(line, "liveswitch_api_request_duration_seconds") {
			lines = append(lines, line)
		}
	}
	got := strings.Join(lines, "")
	golden := filepath.Join("testdata", "poller_metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the poller's series differ from %s (run with -update after checking):\n%s", golden, got)
	}
}
