package redisstate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/statetest"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func newClient(t testing.TB, r *testenv.Redis) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisStateRules: the State in a real redis-server follows the rules
// every State must, as the in-memory one does.
func TestRedisStateRules(t *testing.T) {
	r := testenv.StartRedis(t)
	client := newClient(t, r)
	var n atomic.Int64
	statetest.Run(t, func(_ *testing.T, l callstate.Limits) callstate.State {
		return New(client, "test-"+strconv.FormatInt(n.Add(1), 10)+":", l, 0) // a fresh state per case
	})
}

// TestRedisStatePairsAcrossReplicas: the two ends of a connection and of a
// channel, given to two replicas' States, pair up as in one; a retry given
// to the other replica is a duplicate.
func TestRedisStatePairsAcrossReplicas(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := New(newClient(t, r), "x:", callstate.Limits{}, 0), New(newClient(t, r), "x:", callstate.Limits{}, 0)
	t0 := time.UnixMilli(1700000000000)
	f := func(op callstate.Op, tb callstate.Table, id, typ string, ms int64) callstate.Fact {
		return callstate.Fact{App: "app", Op: op, Entity: callstate.EntityKey(tb, "app", id),
			Seen: callstate.EventKey("app", typ, t0.UnixMilli()+ms, id, "", ""), Ms: t0.UnixMilli() + ms}
	}
	for i, step := range []struct {
		s    *State
		fact callstate.Fact
		want callstate.Effect
	}{
		{a, f(callstate.OpConnectionStart, callstate.TableConnections, "c", "connection.initializing", 0), callstate.Effect{SpanMs: -1}},
		{b, f(callstate.OpConnectionUp, callstate.TableConnections, "c", "connection.connected", 1500), callstate.Effect{SpanMs: 1500}},
		{a, f(callstate.OpConnectionUp, callstate.TableConnections, "c", "connection.connected", 1500), callstate.Effect{Duplicate: true, SpanMs: -1}},
		{a, f(callstate.OpConnectionClose, callstate.TableConnections, "c", "connection.closed", 61500), callstate.Effect{SpanMs: 60000, Phase: callstate.PhaseEstablished}},
		{b, f(callstate.OpChannelOn, callstate.TableChannels, "ch", "channel.activated", 0), callstate.Effect{SpanMs: -1}},
		{a, f(callstate.OpChannelOff, callstate.TableChannels, "ch", "channel.deactivated", 600000), callstate.Effect{SpanMs: 600000}},
	} {
		got := make([]callstate.Effect, 1)
		if _, err := step.s.Apply(context.Background(), []callstate.Fact{step.fact}, t0.Add(time.Duration(i)*time.Millisecond), got); err != nil {
			t.Fatal(err)
		}
		if got[0] != step.want {
			t.Fatalf("step %d: %+v, want %+v", i, got[0], step.want)
		}
	}
}

// TestRedisStateCountsOnceUnderConcurrentRetries: a retry storm of one
// event over two replicas' States at once is applied exactly once.
func TestRedisStateCountsOnceUnderConcurrentRetries(t *testing.T) {
	r := testenv.StartRedis(t)
	states := []*State{New(newClient(t, r), "x:", callstate.Limits{}, 0), New(newClient(t, r), "x:", callstate.Limits{}, 0)}
	now := time.UnixMilli(1700000000000)
	for round := range 20 {
		fact := callstate.Fact{App: "app", Op: callstate.OpConnectionFail, Ms: now.UnixMilli(),
			Entity: callstate.EntityKey(callstate.TableConnections, "app", "c"),
			Seen:   callstate.EventKey("app", "connection.failed", now.UnixMilli(), fmt.Sprint(round), "", "")}
		var applied atomic.Int64
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				got := make([]callstate.Effect, 1)
				if _, err := states[i%2].Apply(context.Background(), []callstate.Fact{fact}, now, got); err != nil {
					t.Error(err)
				}
				if !got[0].Duplicate {
					applied.Add(1)
				}
			})
		}
		wg.Wait()
		if n := applied.Load(); n != 1 {
			t.Fatalf("round %d: applied %d times", round, n)
		}
	}
}

// TestRedisStateFailsWithoutRedis: an unreachable Redis is an error, not
// a half-applied body.
func TestRedisStateFailsWithoutRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(newClient(t, r), "x:", callstate.Limits{}, 0)
	r.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fact := callstate.Fact{App: "a", Op: callstate.OpClientOn, Ms: 1700000000000}
	if _, err := s.Apply(ctx, []callstate.Fact{fact}, time.UnixMilli(1700000000000), make([]callstate.Effect, 1)); err == nil {
		t.Fatal("no error from a dead Redis")
	}
}

// usedMemory is Redis's used_memory, in bytes.
func usedMemory(t testing.TB, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisStateMemory measures what the shared state costs Redis: n
// connections and n channels that never end (each event remembered), then
// as many more events of no entity. Long mode fills the default caps
// (100,000 of each); run with -v for the figures, which docs/applications.md
// quotes. The tables stay at their caps whatever comes after.
func TestRedisStateMemory(t *testing.T) {
	n := 10_000
	if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
		n = callstate.DefaultMaxPending
	}
	r := testenv.StartRedis(t)
	c := newClient(t, r)
	limits := callstate.Limits{MaxEntries: [callstate.NumTables]int{n, n, n}, MaxRemembered: 100 * n}
	s := New(c, "liveswitch_exporter:apps:", limits, 0)
	now := time.Now()
	feed := func(from, to int, withEntities bool) {
		const step = 500
		facts := make([]callstate.Fact, 0, 2*step)
		for i := from; i < to; i += step {
			facts = facts[:0]
			for j := i; j < i+step; j++ {
				app := "app-" + strconv.Itoa(j%3)
				id := fmt.Sprintf("%08x-7d1f-4a7e-9a51-2f3c6e0d9a10", j)
				ms := now.UnixMilli() - int64(j%3000)*1000 // over the last 50 minutes
				if !withEntities {
					facts = append(facts, callstate.Fact{App: app, Op: callstate.OpNone, Ms: ms,
						Seen: callstate.EventKey(app, "connection.stats", ms, id, "", "")})
					continue
				}
				facts = append(facts,
					callstate.Fact{App: app, Op: callstate.OpConnectionStart, Ms: ms, Entity: callstate.EntityKey(callstate.TableConnections, app, id),
						Seen: callstate.EventKey(app, "connection.initializing", ms, id, "", "")},
					callstate.Fact{App: app, Op: callstate.OpChannelOn, Ms: ms, Entity: callstate.EntityKey(callstate.TableChannels, app, id),
						Seen: callstate.EventKey(app, "channel.activated", ms, "", id, "")})
			}
			if _, err := s.Apply(context.Background(), facts, now, make([]callstate.Effect, len(facts))); err != nil {
				t.Fatal(err)
			}
		}
	}
	empty := usedMemory(t, c)
	feed(0, n, true)
	tables := usedMemory(t, c)
	feed(n, 3*n, true) // as many again, twice: the tables evict
	full := usedMemory(t, c)
	feed(3*n, 5*n, false)
	events := usedMemory(t, c)
	sizes, err := s.Sizes(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	perEntry := float64(tables-empty-int64(2*n)*rememberedCost(events, full, 2*n)) / float64(2*n)
	t.Logf("Redis used_memory: %.1f MiB empty; +%.1f MiB for %d connections and %d channels held (%.0f B an entry, its two events' memory apart); "+
		"%.1f MiB once %d more came (tables full); +%.1f MiB for %d more events remembered (%d B an event); held %v, remembered %d",
		mib(empty), mib(tables-empty), n, n, perEntry, mib(full), 4*n, mib(events-full), 2*n, rememberedCost(events, full, 2*n),
		sizes.Entries, sizes.Remembered)
	if sizes.Entries[callstate.TableConnections] != int64(n) || sizes.Entries[callstate.TableChannels] != int64(n) {
		t.Fatalf("held %v, want %d of each", sizes.Entries, n)
	}
	if perEntry > 400 || rememberedCost(events, full, 2*n) > 150 {
		t.Fatalf("%.0f B an entry, %d B a remembered event: more than the documented bounds", perEntry, rememberedCost(events, full, 2*n))
	}
}

// rememberedCost is what one remembered event costs Redis, in bytes, from
// the memory before and after n more were remembered.
func rememberedCost(after, before int64, n int) int64 { return (after - before) / int64(n) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// BenchmarkApplyRedis measures what the shared state costs an event: one
// script a body of 10 events (a connection's initializing, connected and
// closed, in turn), against a real redis-server on loopback, with the
// persistence of the tests (appendfsync always: an fsync a script) and
// with Redis's default for AOF (everysec).
func BenchmarkApplyRedis(b *testing.B) {
	for _, fsync := range []string{"always", "everysec"} {
		b.Run("appendfsync="+fsync, func(b *testing.B) {
			benchApply(b, testenv.StartRedisWith(b, testenv.RedisOptions{Args: []string{"--appendfsync", fsync}}))
		})
	}
}

func benchApply(b *testing.B, r *testenv.Redis) {
	s := New(newClient(b, r), "bench:", callstate.Limits{MaxEntries: [callstate.NumTables]int{100000, 100000, 100000}, MaxRemembered: 1000000}, 0)
	ops := []callstate.Op{callstate.OpConnectionStart, callstate.OpConnectionUp, callstate.OpConnectionClose}
	now := time.Now()
	facts, effects := make([]callstate.Fact, 10), make([]callstate.Effect, 10)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := range facts {
			c := strconv.Itoa(n / 3)
			ms := now.UnixMilli() - 3_000_000 + int64(n/3)%3_000_000 + int64(n%3)
			facts[j] = callstate.Fact{App: "app", Op: ops[n%3], Ms: ms, Entity: callstate.EntityKey(callstate.TableConnections, "app", c),
				Seen: callstate.EventKey("app", strconv.Itoa(n%3), ms, c, "", "")}
			n++
		}
		if _, err := s.Apply(context.Background(), facts, now, effects); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
