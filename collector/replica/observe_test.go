package replica

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestReplicasFoldObservationsAlike: observations logged by one replica,
// between events received by others, leave every replica with the same
// servers, view and counters; a replica that joins after the log was
// trimmed gets the view from the snapshot.
func TestReplicasFoldObservationsAlike(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a, b := startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock)
	for i := range 20 {
		id := fmt.Sprintf(`{"id":"ms-%d","region":"eu"}`, i%5)
		fixture.Ingest(t, b.w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", []string{"started", "unregistered"}[i%2], id))
		if i%4 == 0 {
			fixture.Observe(t, a.w, &fleet.Observation{AtMs: fixture.At(time.Duration(i) * time.Minute), IntervalMs: 15000,
				MediaServers: []fleet.MediaServerFacts{
					{ID: "ms-0", UsedCapacity: fixture.Ptr(float64(i) / 20)},
					{ID: fmt.Sprintf("api-only-%d", i)},
				}})
		}
		if i == 15 {
			clock.Advance(snapshotInterval) // a snapshot is due after the next fold
		}
	}
	got := converged(t, a, b)
	if got.Gateway == nil || got.Gateway.Reconciled[fleet.ChangeCreated] != 5 || got.Gateway.Reconciled[fleet.ChangeRegistered] == 0 {
		t.Fatalf("view after the observations: %+v", got.Gateway)
	}
	waitForTrim(t, srv)
	late := startReplica(t, srv, fleet.DefaultLimits, clock)
	if again := converged(t, a, b, late); !reflect.DeepEqual(again, got) {
		t.Fatalf("late replica holds\n%+v\nwant\n%+v", again, got)
	}
}
