package collector

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// observationAt is an observation at d after the test clock's start, with a
// 15 s interval, listing the given media servers.
func observationAt(d time.Duration, servers ...fleet.MediaServerFacts) *fleet.Observation {
	return &fleet.Observation{AtMs: fixture.At(d), IntervalMs: (15 * time.Second).Milliseconds(), MediaServers: servers}
}

func observe(t *testing.T, w *Writer, o *fleet.Observation) {
	t.Helper()
	if err := w.Observe(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, f *fleet.Fleet, id string) fleet.State {
	t.Helper()
	s, _, ok := f.Server(fleet.Key{Origin: "mediaserver", ID: id})
	if !ok {
		t.Fatalf("media server %s is not tracked", id)
	}
	return s.State
}

// TestObservationsReconcileTheFleet follows the rules of README's "How
// observations change the fleet" through the writer.
func TestObservationsReconcileTheFleet(t *testing.T) {
	f, w, _ := newLimitedWriter(t, nil, fleet.Limits{})
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"missed-registered","region":"eu"}`),
		fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"gone"}`),
		fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"just-started"}`),
	)
	listed := func(ids ...string) []fleet.MediaServerFacts {
		var out []fleet.MediaServerFacts
		for _, id := range ids {
			out = append(out, fleet.MediaServerFacts{ID: id, Region: "eu", UsedCapacity: fixture.Ptr(0.25)})
		}
		return out
	}
	// 20 s after the events: within two intervals nothing but the unknown
	// server changes.
	observe(t, w, observationAt(20*time.Second, listed("missed-registered", "just-started", "bootstrap")...))
	for id, want := range map[string]fleet.State{"missed-registered": fleet.StateRunning, "bootstrap": fleet.StateRegistered, "gone": fleet.StateRegistered} {
		if got := state(t, f, id); got != want {
			t.Errorf("after the first poll, %s is %s, want %s", id, got, want)
		}
	}
	// 40 s: running for more than two intervals while listed.
	observe(t, w, observationAt(40*time.Second, listed("missed-registered", "bootstrap")...))
	if got := state(t, f, "missed-registered"); got != fleet.StateRegistered {
		t.Errorf("missed registered webhook not corrected: %s", got)
	}
	if got := state(t, f, "just-started"); got != fleet.StateRunning {
		t.Errorf("a server no longer listed changed: %s", got)
	}
	if got := state(t, f, "gone"); got != fleet.StateRegistered {
		t.Errorf("absence from the list changed a state: %s", got)
	}
	snap := f.Snapshot()
	if r := snap.Gateway.Reconciled; r[fleet.ChangeCreated] != 1 || r[fleet.ChangeRegistered] != 1 {
		t.Errorf("reconciled %v, want one created and one registered", r)
	}
	if _, ok := snap.Gateway.Listed("just-started"); ok {
		t.Error("the view still lists a server the last poll did not")
	}
	if snap.Stats.Outcomes != ([fleet.NumOutcomes]uint64{fleet.OutcomeApplied: 3}) {
		t.Errorf("observations counted as events: %v", snap.Stats.Outcomes)
	}
}

// TestInvalidObservationWritesNothing: an observation that breaks the label
// rules is refused before it reaches the store.
func TestInvalidObservationWritesNothing(t *testing.T) {
	f, w, _ := newLimitedWriter(t, nil, fleet.Limits{})
	observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "a"}))
	before := f.Snapshot()
	bad := observationAt(time.Minute, fleet.MediaServerFacts{ID: "b"}, fleet.MediaServerFacts{ID: "bad\x00id"})
	if err := w.Observe(context.Background(), bad); err == nil {
		t.Fatal("an id with a NUL was accepted")
	}
	if after := f.Snapshot(); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused observation changed the fleet:\n%+v\n%+v", after, before)
	}
}

// TestObservationRespectsMaxServers: the Gateway cannot grow the fleet past
// --server.max any more than webhooks can.
func TestObservationRespectsMaxServers(t *testing.T) {
	f, w, _ := newLimitedWriter(t, nil, fleet.Limits{MaxServers: 2})
	observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "a"}, fleet.MediaServerFacts{ID: "b"}, fleet.MediaServerFacts{ID: "c"}))
	if n := f.Len(); n != 2 {
		t.Fatalf("%d servers tracked, limit 2", n)
	}
}

// TestListedServerIsNotStale: a media server known only from the Gateway
// sends no webhooks; it is not forgotten as stale while it is listed.
func TestListedServerIsNotStale(t *testing.T) {
	f, w, clock := newLimitedWriter(t, nil, fleet.Limits{StaleAfter: time.Hour})
	observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "quiet"}, fleet.MediaServerFacts{ID: "dropped"}))
	clock.Advance(2 * time.Hour)
	observe(t, w, observationAt(2*time.Hour, fleet.MediaServerFacts{ID: "quiet"}))
	if _, err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.Server(fleet.Key{Origin: "mediaserver", ID: "quiet"}); !ok {
		t.Error("a listed media server was forgotten as stale")
	}
	if _, _, ok := f.Server(fleet.Key{Origin: "mediaserver", ID: "dropped"}); ok {
		t.Error("a stale media server the Gateway no longer lists was kept")
	}
}

// TestGatewayViewRestoredFromStore: the view and the servers it created are
// committed together and come back after a restart, series for series.
func TestGatewayViewRestoredFromStore(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, w, clock := newLimitedWriter(t, store, fleet.Limits{})
	observe(t, w, gatewayFixture())
	want := exposition(t, NewCollector(f, WithGatewayAPI(clock.Now)))
	w.Close()
	store.Close()
	if got := exposition(t, NewCollector(reopen(t, dir), WithGatewayAPI(clock.Now))); string(got) != string(want) {
		t.Fatalf("restored:\n%s\nwant:\n%s", got, want)
	}
}

// TestCorruptGatewayRecordRefused: a view that cannot be read stops the
// restore, as a corrupt server record does.
func TestCorruptGatewayRecordRefused(t *testing.T) {
	store, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bad := &storage.Batch{Puts: map[string][]byte{gatewayRecordKey: []byte(`{"poll_ms":1,"interval_ms":1,"media_servers":[{"id":"b"},{"id":"a"}]}`)}}
	if err := store.Commit(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(fleet.New(), store, WriterOptions{})
	defer w.Close()
	if err := w.Restore(context.Background()); err == nil || !strings.Contains(err.Error(), gatewayRecordKey) {
		t.Fatalf("restore of an unsorted view: %v", err)
	}
}

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
	f, w, clock := newLimitedWriter(t, nil, fleet.Limits{})
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(-time.Hour), "mediaserver", "registered", `{"id":"ms-1","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(fixture.At(-time.Hour), "mediaserver", "registered", `{"id":"ms-unlisted","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(fixture.At(-time.Hour), "gateway", "started", `{"id":"gw-1"}`),
	)
	observe(t, w, gatewayFixture())
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
	f, w, clock := newLimitedWriter(t, nil, fleet.Limits{})
	up := func() string {
		return metricLine(t, exposition(t, NewCollector(f, WithGatewayAPI(clock.Now))), "liveswitch_api_up ")
	}
	if got := up(); got != "liveswitch_api_up 0" {
		t.Fatalf("before any poll: %s", got)
	}
	observe(t, w, observationAt(0))
	if got := up(); got != "liveswitch_api_up 1" {
		t.Fatalf("after a success: %s", got)
	}
	w.PollFailed(clock.Now().Add(15 * time.Second))
	if got := up(); got != "liveswitch_api_up 0" {
		t.Fatalf("after a failed poll: %s", got)
	}
	observe(t, w, observationAt(30*time.Second))
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
