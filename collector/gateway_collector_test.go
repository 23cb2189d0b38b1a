package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// gatewayFixture is one poll's observation: a media server the webhooks
// never told of, one with every fact unknown, and two applications.
func gatewayFixture() *fleet.Observation {
	return &fleet.Observation{AtMs: fixture.At(0), IntervalMs: 15000,
		MediaServers: []fleet.MediaServerFacts{
			{ID: "ms-2", Region: "eu-west", DeploymentID: "prod", Version: "1.24.2", CoreCount: 8, UsedCapacity: fixture.Ptr(1.05),
				Available: fixture.Ptr(false), Active: fixture.Ptr(true), Draining: fixture.Ptr(false), OverCapacity: fixture.Ptr(true)},
			{ID: "ms-1"},
		},
		Applications: []fleet.ApplicationFacts{
			{ID: "app-b", Channels: fixture.Ptr(int64(2))},
			{ID: "app-a", Channels: fixture.Ptr(int64(4)), Clients: fixture.Ptr(int64(9)), Connections: fixture.Ptr(int64(12)), Users: fixture.Ptr(int64(8)), Devices: fixture.Ptr(int64(9))},
		}}
}

func TestGatewayCollectorGolden(t *testing.T) {
	f, w, clock := newWriter(t)
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(-time.Hour), "mediaserver", "registered", `{"id":"ms-1","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(fixture.At(-time.Hour), "mediaserver", "registered", `{"id":"ms-unlisted","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(fixture.At(-time.Hour), "gateway", "started", `{"id":"gw-1"}`),
	)
	fixture.Observe(t, w, gatewayFixture())
	c := NewCollector(f, WithGatewayAPI(clock.Now))
	golden := filepath.Join("testdata", "gateway_metrics.golden")
	if *update {
		if err := os.WriteFile(golden, exposition(t, c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := exposition(t, c); string(got) != string(want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	if strings.Contains(string(exposition(t, NewCollector(f))), "liveswitch_api_") {
		t.Fatal("API series exported with the API off")
	}
}

// TestAPIUp: up after a success within three intervals, down at once when
// this exporter's poll fails, and down when successes stop coming.
func TestAPIUp(t *testing.T) {
	f, w, clock := newWriter(t)
	up := func() string {
		return metricLine(t, exposition(t, NewCollector(f, WithGatewayAPI(clock.Now))), "liveswitch_api_up ")
	}
	if got := up(); got != "liveswitch_api_up 0" {
		t.Fatalf("before any poll: %s", got)
	}
	fixture.Observe(t, w, &fleet.Observation{AtMs: fixture.At(0), IntervalMs: 15000})
	if got := up(); got != "liveswitch_api_up 1" {
		t.Fatalf("after a success: %s", got)
	}
	w.PollFailed(clock.Now().Add(15 * time.Second))
	if got := up(); got != "liveswitch_api_up 0" {
		t.Fatalf("after a failed poll: %s", got)
	}
	fixture.Observe(t, w, &fleet.Observation{AtMs: fixture.At(30 * time.Second), IntervalMs: 15000})
	clock.Advance(30*time.Second + 45*time.Second)
	if got := up(); got != "liveswitch_api_up 1" {
		t.Fatalf("three intervals after a success: %s", got)
	}
	clock.Advance(time.Millisecond)
	if got := up(); got != "liveswitch_api_up 0" {
		t.Fatalf("more than three intervals after the last success: %s", got)
	}
}

func metricLine(t *testing.T, expo []byte, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(string(expo), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line %q in:\n%s", prefix, expo)
	return ""
}
