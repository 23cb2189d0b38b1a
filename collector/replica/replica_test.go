package replica

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// testReplica is one replica of a fleet shared through a real Redis.
type testReplica struct {
	fleet *fleet.Fleet
	w     *writer.Writer
}

func startReplica(t *testing.T, srv *testenv.Redis, limits fleet.Limits, clock *fixture.Clock) testReplica {
	t.Helper()
	log, err := storage.OpenRedis(srv.URL(), storage.RedisOptions{Prefix: "test:", Owner: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New()
	w := New(f, log, writer.Options{Decode: event.DefaultDecodeOptions, Limits: limits, Now: clock.Now}, Options{})
	t.Cleanup(func() { w.Close(); _ = log.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	return testReplica{f, w}
}

// shared is what every replica must agree on: the servers and the counters
// folded from the log (invalid bodies and store failures are each replica's
// own).
func shared(f *fleet.Fleet) fleet.Snapshot {
	s := f.Snapshot()
	s.Stats.Outcomes[fleet.OutcomeInvalid], s.Stats.StorageErrors, s.StorageUp = 0, 0, false
	return s
}

// converged polls until every replica holds the same fleet and returns it.
func converged(t *testing.T, replicas ...testReplica) fleet.Snapshot {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		first := shared(replicas[0].fleet)
		same := true
		for _, r := range replicas[1:] {
			same = same && reflect.DeepEqual(first, shared(r.fleet))
		}
		if same {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not converge:\n%+v\n%+v", first.Stats, shared(replicas[1].fleet).Stats)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicasAgreeWhoeverReceives sends every server's lifecycle to random
// replicas, and the same event to two replicas at the same instant: the
// replicas must end identical, with each duplicate applied exactly once.
func TestReplicasAgreeWhoeverReceives(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	replicas := []testReplica{
		startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock), startReplica(t, srv, fleet.DefaultLimits, clock),
	}
	reference := fleet.New()
	ref := writer.New(reference, nil, writer.Options{Decode: event.DefaultDecodeOptions, Now: clock.Now})
	defer ref.Close()

	actions := []string{"started", "registered", "unregistered", "registered", "stopped", "started"}
	var wg sync.WaitGroup
	for s := range 24 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 7))
			for i, a := range actions {
				body := fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", a,
					fmt.Sprintf(`{"id":"ms-%d","region":"r%d","coreCount":%d}`, s, s%3, s%4+1))
				receivers := 1
				if i == 2 && s%2 == 0 {
					receivers = 2 // delivered to two replicas at once
				}
				var pair sync.WaitGroup
				for _, r := range rng.Perm(len(replicas))[:receivers] {
					pair.Go(func() {
						if _, err := replicas[r].w.Ingest(context.Background(), []byte(body)); err != nil {
							t.Error(err)
						}
					})
				}
				pair.Wait()
				if _, err := ref.Ingest(context.Background(), []byte(body)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := converged(t, replicas...)
	want := shared(reference)
	if !reflect.DeepEqual(got.Servers, want.Servers) {
		t.Fatalf("replicas differ from one exporter fed the same events:\n%+v\n%+v", got.Servers, want.Servers)
	}
	if o := got.Stats.Outcomes; o[fleet.OutcomeApplied] != 24*6 || o[fleet.OutcomeDuplicate] != 12 {
		t.Fatalf("outcomes %v: want every event applied once and 12 duplicates", o)
	}
}

func TestReplicasForgetOnce(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	limits := fleet.Limits{Retention: time.Hour}
	a, b := startReplica(t, srv, limits, clock), startReplica(t, srv, limits, clock)
	fixture.Ingest(t, a.w,
		fixture.EventJSON(fixture.At(0), "mediaserver", "stopped", `{"id":"old"}`),
		fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"retire"}`),
		fixture.EventJSON(fixture.At(0), "gateway", "started", `{"id":"gw"}`),
	)
	if found, err := b.w.Forget(context.Background(), fleet.Key{Origin: "mediaserver", ID: "retire"}); err != nil || !found {
		t.Fatalf("forget through another replica: %v, %v", found, err)
	}
	clock.Advance(2 * time.Hour)
	for _, r := range []testReplica{a, b} { // both sweep the same expiry
		if _, err := r.w.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := converged(t, a, b)
	if len(got.Servers) != 1 || got.Servers[0].Info.ID != "gw" {
		t.Fatalf("left %+v, want only gw", got.Servers)
	}
	if f := got.Stats.Forgotten; f[fleet.ForgetDeleted] != 1 || f[fleet.ForgetRetention] != 1 {
		t.Fatalf("forgotten %v: each server must be counted once", f)
	}
}

// TestReplicaJoiningLateLoadsEverything: a replica started after snapshots
// were saved and the log trimmed holds what the others hold.
func TestReplicaJoiningLateLoadsEverything(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a := startReplica(t, srv, fleet.DefaultLimits, clock)
	for i := range 50 {
		fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(time.Duration(i)*time.Second), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i%7)))
		if i == 30 {
			clock.Advance(snapshotInterval) // a snapshot is due after the next fold
		}
	}
	waitForTrim(t, srv)
	b := startReplica(t, srv, fleet.DefaultLimits, clock)
	got := converged(t, a, b)
	if len(got.Servers) != 7 || got.Stats.Outcomes[fleet.OutcomeApplied] != 50 {
		t.Fatalf("late replica: %d servers, outcomes %v", len(got.Servers), got.Stats.Outcomes)
	}
}

// waitForTrim waits until a snapshot was saved and the log trimmed: the
// start of the log is gone.
func waitForTrim(t *testing.T, srv *testenv.Redis) {
	t.Helper()
	log, err := storage.OpenRedis(srv.URL(), storage.RedisOptions{Prefix: "test:", Owner: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	testenv.WaitFor(t, 30*time.Second, "a snapshot is saved and the log trimmed", func() bool {
		_, err := log.Read(context.Background(), "", 0)
		return errors.Is(err, storage.ErrGap)
	})
}

// TestReplicaSurvivesRedisOutage: while Redis is down, webhooks fail with
// ErrStorage and the fleet stays as it was; once it is back the replica is
// healthy again by itself and nothing acknowledged is lost.
func TestReplicaSurvivesRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	a := startReplica(t, srv, fleet.DefaultLimits, clock)
	fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"ms-1"}`))
	srv.Kill()
	_, err := a.w.Ingest(context.Background(), []byte(fixture.EventJSON(fixture.At(time.Second), "mediaserver", "stopped", `{"id":"ms-1"}`)))
	if !errors.Is(err, writer.ErrStorage) {
		t.Fatalf("ingest with Redis down: %v, want ErrStorage", err)
	}
	testenv.WaitFor(t, 30*time.Second, "unhealthy", func() bool { return !a.w.Healthy() && !a.fleet.Snapshot().StorageUp })
	if s, _, _ := a.fleet.Server(fleet.Key{Origin: "mediaserver", ID: "ms-1"}); s.State != fleet.StateRegistered {
		t.Fatalf("the fleet changed during the outage: %+v", s)
	}
	srv.Start()
	testenv.WaitFor(t, 30*time.Second, "healthy again", a.w.Healthy)
	fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(2*time.Second), "mediaserver", "stopped", `{"id":"ms-1"}`))
	b := startReplica(t, srv, fleet.DefaultLimits, clock)
	got := converged(t, a, b)
	if len(got.Servers) != 1 || got.Servers[0].State != fleet.StateStopped || got.Stats.StorageErrors != 0 {
		t.Fatalf("after the outage: %+v", got)
	}
}

// BenchmarkReplicaLag measures how long after one replica acknowledged an
// event another replica shows it (the bound: 1 s).
func BenchmarkReplicaLag(b *testing.B) {
	srv := testenv.StartRedis(b)
	clock := fixture.NewClock()
	replicas := make([]testReplica, 2)
	for i := range replicas {
		log, err := storage.OpenRedis(srv.URL(), storage.RedisOptions{Prefix: "bench:", Owner: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		f := fleet.New()
		w := New(f, log, writer.Options{Decode: event.DefaultDecodeOptions, Now: clock.Now}, Options{})
		defer w.Close()
		if err := w.Restore(context.Background()); err != nil {
			b.Fatal(err)
		}
		replicas[i] = testReplica{f, w}
	}
	var worst, total time.Duration
	b.ResetTimer()
	for i := range b.N {
		body := fixture.EventJSON(fixture.At(time.Duration(i)*time.Millisecond), "mediaserver", "registered", fmt.Sprintf(`{"id":"ms-%d"}`, i))
		if _, err := replicas[0].w.Ingest(context.Background(), []byte(body)); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		for replicas[1].fleet.Len() <= i {
			runtime.Gosched()
		}
		lag := time.Since(acked)
		worst, total = max(worst, lag), total+lag
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "lag-µs/op")
	b.ReportMetric(float64(worst.Microseconds()), "worst-lag-µs")
}

// TestReplicasShareTheLimit: at --server.max, eviction and refusal happen in
// the fold, so every replica evicts the same server and counts it once.
func TestReplicasShareTheLimit(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := fixture.NewClock()
	limits := fleet.Limits{MaxServers: 3}
	a, b := startReplica(t, srv, limits, clock), startReplica(t, srv, limits, clock)
	fixture.Ingest(t, a.w,
		fixture.EventJSON(fixture.At(0), "mediaserver", "stopped", `{"id":"old"}`),
		fixture.EventJSON(fixture.At(time.Second), "mediaserver", "stopped", `{"id":"newer"}`),
		fixture.EventJSON(fixture.At(0), "gateway", "started", `{"id":"gw"}`),
	)
	fixture.Ingest(t, b.w, fixture.EventJSON(fixture.At(2*time.Second), "mediaserver", "registered", `{"id":"ms-1"}`)) // evicts old
	res := fixture.Ingest(t, a.w, fixture.EventJSON(fixture.At(3*time.Second), "mediaserver", "registered", `{"id":"ms-2"}`))
	if res[0].Outcomes[fleet.OutcomeApplied] != 1 { // evicts newer
		t.Fatalf("ms-2: %v", res[0])
	}
	res = fixture.Ingest(t, b.w, fixture.EventJSON(fixture.At(4*time.Second), "mediaserver", "registered", `{"id":"ms-3"}`))
	if res[0].Outcomes[fleet.OutcomeRefused] != 1 { // nothing stopped is left to evict
		t.Fatalf("ms-3: %v, want refused", res[0])
	}
	got := converged(t, a, b)
	var ids []string
	for _, s := range got.Servers {
		ids = append(ids, s.Info.ID)
	}
	if fmt.Sprint(ids) != "[gw ms-1 ms-2]" || got.Stats.Forgotten[fleet.ForgetEvicted] != 2 || got.Stats.Outcomes[fleet.OutcomeRefused] != 1 {
		t.Fatalf("servers %v, forgotten %v, outcomes %v", ids, got.Stats.Forgotten, got.Stats.Outcomes)
	}
}
