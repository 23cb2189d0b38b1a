package writer

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

// observationAt is an observation at d after the test clock's start, with a
// 15 s interval, listing the given media servers.
func observationAt(d time.Duration, servers ...fleet.MediaServerFacts) *fleet.Observation {
	return &fleet.Observation{AtMs: fixture.At(d), IntervalMs: (15 * time.Second).Milliseconds(), MediaServers: servers}
}

func state(t *testing.T, f *fleet.Fleet, id string) fleet.State {
	t.Helper()
	s, _, ok := f.Server(fleet.Key{Origin: "mediaserver", ID: id})
	if !ok {
		t.Fatalf("media server %s is not tracked", id)
	}
	return s.State
}

// TestObservationsReconcileTheFleet follows the rules of docs/gateway-api.md's "How
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
	fixture.Observe(t, w, observationAt(20*time.Second, listed("missed-registered", "just-started", "bootstrap")...))
	for id, want := range map[string]fleet.State{"missed-registered": fleet.StateRunning, "bootstrap": fleet.StateRegistered, "gone": fleet.StateRegistered} {
		if got := state(t, f, id); got != want {
			t.Errorf("after the first poll, %s is %s, want %s", id, got, want)
		}
	}
	// 40 s: running for more than two intervals while listed.
	fixture.Observe(t, w, observationAt(40*time.Second, listed("missed-registered", "bootstrap")...))
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
	fixture.Observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "a"}))
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
	fixture.Observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "a"}, fleet.MediaServerFacts{ID: "b"}, fleet.MediaServerFacts{ID: "c"}))
	if n := f.Len(); n != 2 {
		t.Fatalf("%d servers tracked, limit 2", n)
	}
}

// TestListedServerIsNotStale: a media server known only from the Gateway
// sends no webhooks; it is not forgotten as stale while it is listed.
func TestListedServerIsNotStale(t *testing.T) {
	f, w, clock := newLimitedWriter(t, nil, fleet.Limits{StaleAfter: time.Hour})
	fixture.Observe(t, w, observationAt(0, fleet.MediaServerFacts{ID: "quiet"}, fleet.MediaServerFacts{ID: "dropped"}))
	clock.Advance(2 * time.Hour)
	fixture.Observe(t, w, observationAt(2*time.Hour, fleet.MediaServerFacts{ID: "quiet"}))
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
// committed together and come back after a restart, fact for fact.
func TestGatewayViewRestoredFromStore(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, w, _ := newLimitedWriter(t, store, fleet.Limits{})
	fixture.Observe(t, w, &fleet.Observation{AtMs: fixture.At(0), IntervalMs: 15000,
		MediaServers: []fleet.MediaServerFacts{
			{ID: "ms-2", Region: "eu-west", DeploymentID: "prod", Version: "1.24.2", CoreCount: 8, UsedCapacity: fixture.Ptr(1.05),
				Available: fixture.Ptr(false), Active: fixture.Ptr(true), Draining: fixture.Ptr(false), OverCapacity: fixture.Ptr(true)},
			{ID: "ms-1"},
		},
		Applications: []fleet.ApplicationFacts{{ID: "app-b", Channels: fixture.Ptr(int64(2))}, {ID: "app-a", Users: fixture.Ptr(int64(8))}},
	})
	want := f.Snapshot()
	w.Close()
	store.Close()
	got := reopen(t, dir).Snapshot()
	if !reflect.DeepEqual(got.Servers, want.Servers) || !reflect.DeepEqual(got.Gateway, want.Gateway) {
		t.Fatalf("restored:\n%+v\n%+v\nwant:\n%+v\n%+v", got.Servers, got.Gateway, want.Servers, want.Gateway)
	}
	if len(got.Servers) != 2 || got.Gateway == nil || len(got.Gateway.Applications) != 2 {
		t.Fatalf("restored %d servers and the view %+v: not what was observed", len(got.Servers), got.Gateway)
	}
}

// TestCorruptGatewayRecordRefused: a view that cannot be read stops the
// restore, as a corrupt server record does.
func TestCorruptGatewayRecordRefused(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bad := &storage.Batch{Puts: map[string][]byte{gatewayRecordKey: []byte(`{"poll_ms":1,"interval_ms":1,"media_servers":[{"id":"b"},{"id":"a"}]}`)}}
	if err := store.Commit(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	w := New(fleet.New(), store, Options{})
	defer w.Close()
	if err := w.Restore(context.Background()); err == nil || !strings.Contains(err.Error(), gatewayRecordKey) {
		t.Fatalf("restore of an unsorted view: %v", err)
	}
}
