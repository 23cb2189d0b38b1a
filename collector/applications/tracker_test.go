package applications

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// testNow is the exporter's clock in the tests: after every event.
var testNow = t0.Add(time.Minute)

func newTestTracker(t testing.TB, maxApps, maxPending int) (*Tracker, *time.Time) {
	t.Helper()
	now := testNow
	return New(Options{Decode: event.DefaultDecodeOptions, MaxApplications: maxApps, MaxPending: maxPending,
		Now: func() time.Time { return now }}), &now
}

// appEvent renders one application event; ms is after t0.
func appEvent(ms int64, typ, app, conn, connType string) string {
	object := fmt.Sprintf(`{"applicationId":%q,"id":"obj"}`, app)
	key := strings.Split(typ, ".")[0]
	if key == "connection" {
		object = fmt.Sprintf(`{"applicationId":%q,"id":%q,"type":%q,"channelId":"ch","clientId":"cl"}`, app, conn, connType)
	}
	return fmt.Sprintf(`{"timestamp":%d,"origin":%q,"type":%q,%q:%s}`, t0.UnixMilli()+ms, key, typ, key, object)
}

func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

func mustIngest(t *testing.T, tr *Tracker, body string) fleet.Result {
	t.Helper()
	res, err := tr.Ingest([]byte(body), nil)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return res
}

// TestTrackerGolden feeds a small life of two applications and compares
// every series with testdata/metrics.golden.
func TestTrackerGolden(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	for _, body := range []string{
		appEvent(0, "channel.activated", "app-a", "", ""),
		appEvent(10, "client.registered", "app-a", "", ""),
		appEvent(20, "channel.client.joined", "app-a", "", ""),
		batch(
			appEvent(100, "connection.initializing", "app-a", "c1", "sfu"),
			appEvent(150, "connection.connecting", "app-a", "c1", "sfu"),
			appEvent(1300, "connection.connected", "app-a", "c1", "sfu"), // 1.2 s
			appEvent(200, "connection.initializing", "app-a", "c2", "peer"),
		),
		appEvent(2700, "connection.connected", "app-a", "c2", "peer"), // 2.5 s
		appEvent(300, "connection.initializing", "app-a", "c3", "MCU"),
		appEvent(900, "connection.failing", "app-a", "c3", "MCU"),
		appEvent(1000, "connection.failed", "app-a", "c3", "MCU"),
		appEvent(1000, "connection.failed", "app-b", "x", "carrier-pigeon"),
		appEvent(1000, "connection.failed", "app-b", "y", ""),
		appEvent(5000, "connection.stats", "app-a", "c1", "sfu"),
		appEvent(6000, "connection.closed", "app-a", "c1", "sfu"),
		appEvent(400, "connection.initializing", "app-b", "z", "sfu"), // still pending
	} {
		mustIngest(t, tr, body)
	}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		writeExposition(t, tr, golden)
	}
	want, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(tr, want); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(tr); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}

func TestTrackerOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // fleet.Result.String()
	}{
		{"documented kinds", batch(appEvent(0, "client.registered", "a", "", ""), appEvent(1, "client.stats", "a", "", "")), "applied=2"},
		{"an unknown kind of a known origin", appEvent(0, "connection.exploded", "a", "c", "sfu"), "ignored=1"},
		{"an event that names no application", `{"timestamp":1700000000000,"type":"client.left"}`, "ignored=1"},
		{"one of each", batch(appEvent(0, "channel.activated", "a", "", ""), appEvent(0, "channel.exploded", "a", "", "")), "applied=1 ignored=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, 10, 10)
			if got := mustIngest(t, tr, tc.body).String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			// Events taken count in the application families, not in the
			// fleet's outcomes; only their arrival shows there.
			if got := tr.Outcomes().Stats(); got.Outcomes != [len(got.Outcomes)]uint64{} || got.LastReceivedMs == 0 {
				t.Fatalf("outcome counter %+v, want nothing counted and the arrival noted", got)
			}
		})
	}
}

// TestTrackerRefusesBeyondMaxApplications: past the cap, a new
// application's events are refused, the known ones' still counted.
func TestTrackerRefusesBeyondMaxApplications(t *testing.T) {
	tr, _ := newTestTracker(t, 2, 10)
	mustIngest(t, tr, batch(appEvent(0, "channel.activated", "a", "", ""), appEvent(0, "channel.activated", "b", "", "")))
	res := mustIngest(t, tr, batch(
		appEvent(1, "channel.activated", "c", "", ""),
		appEvent(1, "connection.initializing", "c", "c1", "sfu"),
		appEvent(1, "channel.deactivated", "a", "", "")))
	if res.String() != "applied=1 refused=2" {
		t.Fatalf("got %s", res)
	}
	if n := testutil.ToFloat64(tr.metrics.events.WithLabelValues("a", "channel.deactivated")); n != 1 {
		t.Fatalf("a known application's event not counted: %v", n)
	}
	if strings.Contains(exposition(t, tr), `application_id="c"`) || tr.pending.len() != 0 {
		t.Fatal("the refused application has series or pending connections")
	}
	if got := tr.Outcomes().Stats().Outcomes[fleet.OutcomeRefused]; got != 2 {
		t.Fatalf("%d refused counted, want 2", got)
	}
}

func TestTrackerSetupTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bodies []string
		count  uint64
		sum    float64
	}{
		{"in order", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(750, "connection.connected", "a", "c", "sfu")}, 1, 0.75},
		{"one batch", []string{batch(appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(2000, "connection.connected", "a", "c", "sfu"))}, 1, 2},
		{"connected delivered first", []string{appEvent(750, "connection.connected", "a", "c", "sfu"), appEvent(0, "connection.initializing", "a", "c", "sfu")}, 0, 0},
		{"connected stamped before initializing", []string{appEvent(750, "connection.initializing", "a", "c", "sfu"), appEvent(0, "connection.connected", "a", "c", "sfu")}, 0, 0},
		{"a retried connected is observed once", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "a", "c", "sfu"), appEvent(500, "connection.connected", "a", "c", "sfu")}, 1, 0.5},
		{"failed ends the wait", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(100, "connection.failed", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "a", "c", "sfu")}, 0, 0},
		{"another application's connection of the same id", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "b", "c", "sfu")}, 0, 0},
		{"no connection id", []string{appEvent(0, "connection.initializing", "a", "", "sfu"), appEvent(500, "connection.connected", "a", "", "sfu")}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, 10, 10)
			for _, b := range tc.bodies {
				mustIngest(t, tr, b)
			}
			count, sum := setupOf(t, tr, "a")
			if count != tc.count || sum != tc.sum {
				t.Fatalf("observed %d setups summing to %vs, want %d and %vs", count, sum, tc.count, tc.sum)
			}
		})
	}
}

// setupOf reads the setup histogram of app.
func setupOf(t *testing.T, tr *Tracker, app string) (uint64, float64) {
	t.Helper()
	families, err := gather(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "liveswitch_application_connection_setup_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == app {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

// TestTrackerVerify: verify sees the applications the events name, and
// when it refuses, nothing at all is counted.
func TestTrackerVerify(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	refusal := errors.New("bad signature")
	var seen []string
	body := batch(appEvent(0, "connection.initializing", "b", "c", "sfu"), appEvent(1, "channel.activated", "a", "", ""),
		`{"timestamp":1700000000000,"type":"client.left"}`, appEvent(2, "channel.activated", "b", "", ""))
	_, err := tr.Ingest([]byte(body), func(ids []string) error {
		seen = ids
		return refusal
	})
	if !errors.Is(err, refusal) || !slices.Equal(seen, []string{"b", "a", ""}) {
		t.Fatalf("got %v, verify saw %q", err, seen)
	}
	if got := tr.Outcomes().Stats(); got != (fleet.Stats{}) {
		t.Fatalf("a refused body was counted: %+v", got)
	}
	if text := exposition(t, tr); strings.Contains(text, "application_id") || tr.pending.len() != 0 {
		t.Fatalf("a refused body left series or pending connections:\n%s", text)
	}
}

// TestTrackerLeavesServerBodiesAndCountsInvalidOnes: a server body is
// not the tracker's and counts nothing; a malformed application body is
// counted invalid, once per event it held.
func TestTrackerLeavesServerBodiesAndCountsInvalidOnes(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	server := `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`
	if _, err := tr.Ingest([]byte(server), func([]string) error { t.Fatal("verify called for a server body"); return nil }); !errors.Is(err, event.ErrNotApplications) {
		t.Fatalf("server body: %v", err)
	}
	var invalid *event.InvalidError
	if _, err := tr.Ingest([]byte(batch(appEvent(0, "client.left", "a", "", ""), server)), nil); !errors.As(err, &invalid) {
		t.Fatalf("mixed body: %v", err)
	}
	if got := tr.Outcomes().Stats().Outcomes; got[fleet.OutcomeInvalid] != 2 || got[fleet.OutcomeApplied] != 0 {
		t.Fatalf("outcomes %v, want 2 invalid only", got)
	}
}

// TestTrackerDropsExpiredAtScrape: a connection that never connects is
// dropped 5 minutes after it arrived, and the drop shows at the next
// scrape even when no event comes.
func TestTrackerDropsExpiredAtScrape(t *testing.T) {
	tr, now := newTestTracker(t, 10, 10)
	mustIngest(t, tr, appEvent(0, "connection.initializing", "a", "c", "sfu"))
	*now = now.Add(DefaultPendingTTL)
	text := exposition(t, tr)
	for _, want := range []string{
		`liveswitch_exporter_pending_connections 0`,
		`liveswitch_exporter_pending_connections_dropped_total{reason="expired"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Fatalf("no %s in\n%s", want, text)
		}
	}
}
