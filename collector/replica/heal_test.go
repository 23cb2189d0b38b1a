package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// gatedLog is a storage.Log a test can hold back: while lagging, its reads
// return nothing (a replica that fell behind); once hang is armed, the
// first rebuild to read the log's entries stops there, with every probe of
// that replica, until released (a holder paused mid-rebuild).
type gatedLog struct {
	storage.Log
	lagging atomic.Bool
	hang    *hang
	stopped atomic.Bool
}

// hang stops the first replica that reaches it until resume.
type hang struct {
	armed   atomic.Bool
	holder  atomic.Pointer[gatedLog]
	release chan struct{}
	once    sync.Once
}

func newHang() *hang { return &hang{release: make(chan struct{})} }

func (h *hang) resume() { h.once.Do(func() { close(h.release) }) }

func (g *gatedLog) Read(ctx context.Context, after string, wait time.Duration) ([]storage.Entry, error) {
	g.wait()
	if g.lagging.Load() {
		sleep(ctx, min(wait, 20*time.Millisecond))
		return nil, nil
	}
	return g.Log.Read(ctx, after, wait)
}

func (g *gatedLog) Entries(ctx context.Context) ([]storage.Entry, error) {
	if g.hang != nil && g.hang.armed.CompareAndSwap(true, false) {
		g.hang.holder.Store(g)
		g.stopped.Store(true)
		<-g.hang.release
		g.stopped.Store(false)
	}
	return g.Log.Entries(ctx)
}

func (g *gatedLog) Probe(ctx context.Context, self storage.Presence) (storage.State, error) {
	g.wait()
	return g.Log.Probe(ctx, self)
}

// wait blocks while this replica is stopped, as every thread of a paused
// process would.
func (g *gatedLog) wait() {
	if g.stopped.Load() {
		<-g.hang.release
	}
}

// gatedReplica is a replica on a gatedLog, with its log lines.
type gatedReplica struct {
	testReplica
	log  *gatedLog
	logs *testenv.LogBuffer
}

func startGated(t *testing.T, srv *testenv.Redis, clock *fixture.Clock, h *hang) gatedReplica {
	t.Helper()
	log, err := storage.OpenRedis(srv.URL(), storage.RedisOptions{Prefix: "test:", Owner: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedLog{Log: log, hang: h}
	logs := &testenv.LogBuffer{}
	f := fleet.New()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := New(f, g, writer.Options{Decode: event.DefaultDecodeOptions, Now: clock.Now, Logger: logger}, Options{})
	t.Cleanup(func() { w.Close(); _ = log.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	return gatedReplica{testReplica{f, w}, g, logs}
}

// neverBack samples the counters f shows until the test ends, and fails
// it if one goes back: Prometheus would take it for a reset.
func neverBack(t *testing.T, name string, f *fleet.Fleet) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		prev := f.Snapshot()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			cur := f.Snapshot()
			if msg := wentBack(&prev, &cur); msg != "" {
				t.Errorf("replica %s: %s", name, msg)
				return
			}
			prev = cur
		}
	})
}

// wentBack says which counter of a fleet went back from prev to cur.
func wentBack(prev, cur *fleet.Snapshot) string {
	for i := range cur.Stats.Outcomes {
		if cur.Stats.Outcomes[i] < prev.Stats.Outcomes[i] {
			return fmt.Sprintf("events_total{outcome=%d} went from %d to %d", i, prev.Stats.Outcomes[i], cur.Stats.Outcomes[i])
		}
	}
	events := make(map[fleet.Key]uint64, len(cur.Servers))
	for _, s := range cur.Servers {
		for _, n := range s.Events {
			events[s.Key()] += n
		}
	}
	for _, s := range prev.Servers {
		var n uint64
		for _, c := range s.Events {
			n += c
		}
		if got, ok := events[s.Key()]; ok && got < n {
			return fmt.Sprintf("server %v: events_total went from %d to %d", s.Key(), n, got)
		}
	}
	return ""
}

// TestRebuildGoesToTheReplicaThatFoldedMost: replica b lags behind a when
// the log is deleted; b finds the loss first (its append is refused), but
// a, which folded more, rebuilds the log. Nothing a acknowledged is lost,
// and no counter of a goes back.
func TestRebuildGoesToTheReplicaThatFoldedMost(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a, b := startGated(t, srv, clock, nil), startGated(t, srv, clock, nil)
	for i := range 10 {
		fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i)))
	}
	converged(t, a.testReplica, b.testReplica)
	b.log.lagging.Store(true)
	for i := range 10 { // acknowledged by a; b has not read them
		fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(time.Minute+time.Duration(i)*time.Second), "mediaserver", "stopped", fmt.Sprintf(`{"id":"ms-%d"}`, i)))
	}
	neverBack(t, "a", a.fleet)
	srv.CLI("DEL", "test:log")
	b.log.lagging.Store(false)
	_, err := b.w.Ingest(context.Background(), []byte(fixture.EventJSON(fixture.At(2*time.Minute), "gateway", "started", `{"id":"gw"}`)))
	if !errors.Is(err, writer.ErrStorage) {
		t.Fatalf("append to the broken log: %v, want it refused", err)
	}
	testenv.WaitFor(t, 20*time.Second, "both replicas ready again", func() bool { return a.w.Healthy() && b.w.Healthy() })
	got := converged(t, a.testReplica, b.testReplica)
	stopped := 0
	for _, s := range got.Servers {
		if s.State == fleet.StateStopped {
			stopped++
		}
	}
	if stopped != 10 || got.Stats.Outcomes[fleet.OutcomeApplied] != 20 || got.Stats.DataLoss[storage.LossLog] != 1 {
		t.Fatalf("after the rebuild: %d servers stopped, outcomes %v, losses %v; want 10 stopped, 20 applied, 1 log loss",
			stopped, got.Stats.Outcomes, got.Stats.DataLoss)
	}
	if !strings.Contains(a.logs.String(), "The shared store lost data") || strings.Contains(b.logs.String(), "The shared store lost data") {
		t.Fatalf("the rebuild was not a's:\na: %s\nb: %s", a.logs, b.logs)
	}
}

// TestReplicaNotReadyAtFirstRefusedAppend: the append that finds the log
// broken makes the replica not ready at once, before any probe; the
// webhook is told its events were not applied.
func TestReplicaNotReadyAtFirstRefusedAppend(t *testing.T) {
	saved := probeInterval
	probeInterval = time.Hour // no probe during the test
	t.Cleanup(func() { probeInterval = saved })
	srv := testenv.StartRedis(t)
	a := startReplica(t, srv, fleet.DefaultLimits, fixture.NewClock())
	fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"ms-1"}`))
	if !a.w.Healthy() {
		t.Fatal("not ready before the loss")
	}
	srv.CLI("DEL", "test:epoch")
	_, err := a.w.Ingest(context.Background(), []byte(fixture.EventJSON(fixture.At(time.Second), "mediaserver", "stopped", `{"id":"ms-1"}`)))
	var se *writer.StorageError
	if !errors.As(err, &se) || !strings.HasPrefix(se.Hint, "not applied") {
		t.Fatalf("append to a log without epoch: %v; want a StorageError saying not applied", err)
	}
	if a.w.Healthy() {
		t.Fatal("ready after an append reported the log broken")
	}
}

// TestRebuildLockWithoutExpiry: a rebuild lock left with no expiry (by hand,
// or by a version that set none) refuses every append: the replicas are not
// ready while it stands, give it an expiry, and are ready again by
// themselves once it ends.
func TestRebuildLockWithoutExpiry(t *testing.T) {
	quickReplicas(t)
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a, b := startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock)
	fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"ms-1"}`))
	srv.CLI("SET", "test:rebuild", "an-old-replica")
	testenv.WaitFor(t, 10*time.Second, "both replicas not ready while the lock stands", func() bool {
		return !a.w.Healthy() && !b.w.Healthy() && srv.CLI("EXISTS", "test:rebuild") == "1"
	})
	testenv.WaitFor(t, 20*time.Second, "both replicas ready once the lock expired", func() bool {
		return a.w.Healthy() && b.w.Healthy()
	})
	fixture.Ingest(t, b.w, fixture.EventJSON(fixture.At(time.Second), "mediaserver", "stopped", `{"id":"ms-1"}`))
	if got := converged(t, a, b); got.Servers[0].State != fleet.StateStopped {
		t.Fatalf("after the lock: %+v", got.Servers)
	}
}

// TestRebuildHolderStopsMidRebuild: the replica that took the rebuild lock
// stops (as if paused) before it finishes. The others are not ready while
// its lock stands, then rebuild the log themselves once the lock expired
// and its presence is gone, and take webhooks; when it resumes, it finds
// the log rebuilt by another, reloads, and agrees with them. Nothing
// acknowledged is lost.
func TestRebuildHolderStopsMidRebuild(t *testing.T) {
	quickReplicas(t)
	saved := [...]time.Duration{rebuildTTL, presenceTTL}
	rebuildTTL, presenceTTL = time.Second, 300*time.Millisecond
	t.Cleanup(func() { rebuildTTL, presenceTTL = saved[0], saved[1] })
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	h := newHang()
	defer h.resume() // before the replicas close
	replicas := []gatedReplica{startGated(t, srv, clock, h), startGated(t, srv, clock, h), startGated(t, srv, clock, h)}
	for i := range 30 {
		fixture.Ingest(t, replicas[i%3].w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i)))
	}
	converged(t, replicas[0].testReplica, replicas[1].testReplica, replicas[2].testReplica)
	h.armed.Store(true)
	srv.CLI("DEL", "test:log")
	testenv.WaitFor(t, 10*time.Second, "a holder stopped mid-rebuild", func() bool { return h.holder.Load() != nil })
	var holder gatedReplica
	var others []gatedReplica
	for _, r := range replicas {
		if r.log == h.holder.Load() {
			holder = r
		} else {
			others = append(others, r)
		}
	}
	for _, r := range others {
		testenv.WaitFor(t, 10*time.Second, "not ready while the holder's lock stands", func() bool {
			return !r.w.Healthy() || srv.CLI("EXISTS", "test:rebuild") == "0"
		})
	}
	testenv.WaitFor(t, 20*time.Second, "the others ready again without the holder", func() bool {
		return others[0].w.Healthy() && others[1].w.Healthy()
	})
	fixture.Ingest(t, others[0].w, fixture.EventJSON(fixture.At(time.Minute), "mediaserver", "stopped", `{"id":"ms-0"}`))
	h.resume()
	testenv.WaitFor(t, 20*time.Second, "the holder ready again", holder.w.Healthy)
	got := converged(t, replicas[0].testReplica, replicas[1].testReplica, replicas[2].testReplica)
	if len(got.Servers) != 30 || got.Stats.Outcomes[fleet.OutcomeApplied] != 31 || got.Stats.DataLoss[storage.LossLog] != 1 {
		t.Fatalf("after the rebuild: %d servers, outcomes %v, losses %v", len(got.Servers), got.Stats.Outcomes, got.Stats.DataLoss)
	}
	if !strings.Contains(holder.logs.String(), "rebuilt by another replica") {
		t.Fatalf("the holder does not say it reloaded the log another rebuilt:\n%s", holder.logs)
	}
}

// TestReplicaJoiningFindsUnreadableSnapshot: the snapshot's data was
// overwritten; a replica that starts cannot load it, sets it aside, and the
// running replicas, which hold the fleet, rebuild the log; the new replica
// then loads it and holds everything.
func TestReplicaJoiningFindsUnreadableSnapshot(t *testing.T) {
	quickReplicas(t)
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a, b := startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock)
	for i := range 20 {
		fixture.Ingest(t, []testReplica{a, b}[i%2].w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i)))
	}
	converged(t, a, b)
	srv.CLI("HSET", "test:snapshot", "data", "garbage")
	c := startReplica(t, srv, fleet.DefaultLimits, clock)
	got := converged(t, a, b, c)
	if len(got.Servers) != 20 || got.Stats.Outcomes[fleet.OutcomeApplied] != 20 || got.Stats.DataLoss[storage.LossSnapshot] != 1 {
		t.Fatalf("after the unreadable snapshot: %d servers, outcomes %v, losses %v", len(got.Servers), got.Stats.Outcomes, got.Stats.DataLoss)
	}
	if srv.CLI("HGET", "test:snapshot:unreadable", "data") != "garbage" {
		t.Fatal("the unreadable snapshot was not kept aside")
	}
}

// TestReplicaThatDisagreesReloads: a replica whose fleet differs from the
// others' at a checkpoint (a fault of its own) finds it, says so, and
// reloads the fleet from the shared store; then they agree again.
func TestReplicaThatDisagreesReloads(t *testing.T) {
	quickReplicas(t)
	saved := [...]time.Duration{checkpointInterval, snapshotInterval}
	checkpointInterval, snapshotInterval = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { checkpointInterval, snapshotInterval = saved[0], saved[1] })
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a, b := startGated(t, srv, clock, nil), startGated(t, srv, clock, nil)
	send := func(i int) {
		fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i%5)))
	}
	for i := range 5 {
		send(i)
	}
	converged(t, a.testReplica, b.testReplica)
	var wrong fleet.Stats
	wrong.Outcomes[fleet.OutcomeApplied] = 7
	b.fleet.Count(&wrong) // b's fleet no longer matches the log
	i := 5
	testenv.WaitFor(t, 20*time.Second, "b to find it disagrees and reload", func() bool {
		send(i)
		i++
		time.Sleep(20 * time.Millisecond)
		return strings.Contains(b.logs.String(), "differs from another replica's")
	})
	testenv.WaitFor(t, 20*time.Second, "a and b to fold the same fleet again", func() bool {
		fa, fb := a.fleet.FoldedSnapshot(), b.fleet.FoldedSnapshot()
		return fa.Stats.Outcomes == fb.Stats.Outcomes
	})
	if got := a.fleet.FoldedSnapshot().Stats.Outcomes[fleet.OutcomeApplied]; got != uint64(i) {
		t.Fatalf("a holds %d applied events, want %d", got, i)
	}
}
