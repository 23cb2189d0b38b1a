package replica

import (
	"fmt"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// quickReplicas shortens the replicas' timings for one test.
func quickReplicas(t *testing.T) {
	t.Helper()
	saved := [...]time.Duration{probeInterval, startupDefer, memoryInterval}
	probeInterval, startupDefer, memoryInterval = 50*time.Millisecond, 150*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { probeInterval, startupDefer, memoryInterval = saved[0], saved[1], saved[2] })
}

// TestReplicasHealAfterKeysAreLost deletes, with no traffic, each of the
// exporter's keys in Redis (and all of them), or overwrites it with a value
// of another type, which is the same loss: the replicas notice, one
// rebuilds the log from its fleet, both are ready again by themselves,
// agree with a newly started replica, hold every acknowledged event, count
// the loss once, and take webhooks again. Keys that hold no data (claims,
// presences, a lock) are repaired without a loss.
func TestReplicasHealAfterKeysAreLost(t *testing.T) {
	quickReplicas(t)
	for _, tc := range []struct {
		name string
		cmd  []string
		loss storage.Loss
	}{
		{"log deleted", []string{"DEL", "test:log"}, storage.LossLog},
		{"epoch deleted", []string{"DEL", "test:epoch"}, storage.LossEpoch},
		{"snapshot deleted", []string{"DEL", "test:snapshot"}, storage.LossSnapshot},
		{"claims deleted", []string{"DEL", "test:claim:snapshot", "test:claim:sweep"}, storage.LossNone},
		{"everything flushed", []string{"FLUSHALL"}, storage.LossAll},
		{"log overwritten with a string", []string{"SET", "test:log", "garbage"}, storage.LossLog},
		{"log overwritten with a hash", []string{"HSET", "test:log", "a", "b"}, storage.LossLog},
		{"snapshot overwritten with a string", []string{"SET", "test:snapshot", "x"}, storage.LossSnapshot},
		{"epoch overwritten with a list", []string{"LPUSH", "test:epoch", "x"}, storage.LossEpoch},
		{"claim overwritten with a hash", []string{"HSET", "test:claim:snapshot", "a", "b"}, storage.LossNone},
		{"presences overwritten with a set", []string{"SADD", "test:replicas", "x"}, storage.LossNone},
		{"lock overwritten with a hash", []string{"HSET", "test:rebuild", "a", "b"}, storage.LossNone},
		{"lock with no expiry", []string{"SET", "test:rebuild", "an-old-replica"}, storage.LossNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			clock := fixture.NewClock()
			a, b := startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock)
			for i := range 30 {
				w := []testReplica{a, b}[i%2].w
				fixture.Ingest(t, w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i)))
				if i == 20 {
					clock.Advance(snapshotInterval) // the next fold saves a snapshot
				}
			}
			converged(t, a, b)
			if len(tc.cmd) > 1 && tc.cmd[0] != "DEL" {
				srv.Overwrite(tc.cmd...)
			} else {
				srv.CLI(tc.cmd...)
			}
			testenv.WaitFor(t, 20*time.Second, "the loss counted, the lock gone and both replicas ready", func() bool {
				return a.w.Healthy() && b.w.Healthy() && countedLoss(a, tc.loss) && countedLoss(b, tc.loss) &&
					srv.CLI("EXISTS", "test:rebuild") == "0"
			})
			fixture.Ingest(t, b.w, fixture.EventJSON(fixture.At(time.Minute), "mediaserver", "stopped", `{"id":"ms-0"}`))
			c := startReplica(t, srv, fleet.DefaultLimits, clock)
			got := converged(t, a, b, c)
			if len(got.Servers) != 30 || got.Stats.Outcomes[fleet.OutcomeApplied] != 31 {
				t.Fatalf("after the loss: %d servers, outcomes %v; want 30 and 31 applied", len(got.Servers), got.Stats.Outcomes)
			}
			var want [storage.NumLosses]uint64
			if tc.loss != storage.LossNone {
				want[tc.loss] = 1
			}
			if got.Stats.DataLoss != want {
				t.Fatalf("losses counted %v, want %v", got.Stats.DataLoss, want)
			}
		})
	}
}

func countedLoss(r testReplica, loss storage.Loss) bool {
	return loss == storage.LossNone || r.fleet.Snapshot().Stats.DataLoss[loss] == 1
}
