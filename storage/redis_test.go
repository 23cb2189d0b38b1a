package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func openTestRedis(t *testing.T, srv *testenv.Redis, prefix string) *Redis {
	t.Helper()
	r, err := OpenRedis(srv.URL(), RedisOptions{Prefix: prefix, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newTestLog opens a log and creates its first epoch, as the first replica
// does; it returns the position of the epoch's start.
func newTestLog(t *testing.T, srv *testenv.Redis, prefix string) (*Redis, string) {
	t.Helper()
	r := openTestRedis(t, srv, prefix)
	return r, rebuildWith(t, r, "empty fleet")
}

func rebuildWith(t *testing.T, r *Redis, data string) string {
	t.Helper()
	ctx := context.Background()
	if won, err := r.BeginRebuild(ctx, time.Minute); err != nil || !won {
		t.Fatalf("begin rebuild: %v %v", won, err)
	}
	pos, err := r.FinishRebuild(ctx, []byte(data), "")
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// later is a deadline no test reaches.
var later = time.Now().Add(time.Hour)

func appendN(t *testing.T, r *Redis, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := r.Append(context.Background(), fmt.Appendf(nil, "e%d", i), later); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, r *Redis, after string) []Entry {
	t.Helper()
	var all []Entry
	for {
		got, err := r.Read(context.Background(), after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
		after = got[len(got)-1].Position
	}
}

func TestRedisLogKeepsOrderAcrossClients(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, start := newTestLog(t, srv, "p:")
	b := openTestRedis(t, srv, "p:")
	if got, err := a.Read(context.Background(), start, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty log read %v, %v", got, err)
	}
	appendN(t, a, 0, 300)
	appendN(t, b, 300, 700) // more than one read batch
	entries := readAll(t, a, start)
	if len(entries) != 1000 {
		t.Fatalf("read %d entries, want 1000", len(entries))
	}
	for i, e := range entries {
		if want := fmt.Sprintf("e%d", i); string(e.Data) != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Data, want)
		}
	}
	if other, _ := newTestLog(t, srv, "q:"); len(readAll(t, other, "")) != 0 {
		t.Fatal("another prefix sees entries")
	}
}

// TestRedisReadWaitsForAnAppend: a read of an empty log with a wait blocks
// in Redis (so that a replica sees another's entry as soon as it is
// appended) and returns the entry appended while it waits.
func TestRedisReadWaitsForAnAppend(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	got := make(chan []Entry, 1)
	go func() {
		entries, _ := r.Read(context.Background(), start, 10*time.Second)
		got <- entries
	}()
	// The append must come after the reader is blocked, or the test would
	// pass with a reader that never waits.
	testenv.WaitFor(t, 5*time.Second, "a client blocked in XREAD", func() bool {
		return blockedIn(t, srv, "xread") == 1
	})
	select {
	case entries := <-got:
		t.Fatalf("the read returned %v before anything was appended", entries)
	default:
	}
	appendN(t, openTestRedis(t, srv, "p:"), 0, 1)
	if entries := <-got; len(entries) != 1 || string(entries[0].Data) != "e0" {
		t.Fatalf("a waiting read returned %v", entries)
	}
}

// blockedIn counts the clients of srv blocked in command cmd, from CLIENT
// LIST: a blocked client has the flag b and names its command.
func blockedIn(t *testing.T, srv *testenv.Redis, cmd string) int {
	t.Helper()
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		if slices.Contains(fields, "cmd="+cmd) && slices.ContainsFunc(fields, func(f string) bool {
			flags, ok := strings.CutPrefix(f, "flags=")
			return ok && strings.Contains(flags, "b")
		}) {
			n++
		}
	}
	return n
}

func TestRedisSnapshotTrimsAndNeverGoesBack(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	ctx := context.Background()
	appendN(t, r, 0, 10)
	entries := readAll(t, r, start)
	if err := r.SaveSnapshot(ctx, entries[5].Position, []byte("through 5")); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveSnapshot(ctx, entries[3].Position, []byte("through 3")); err != nil {
		t.Fatal(err)
	}
	snap, err := r.LoadSnapshot(ctx)
	if err != nil || snap.Through != entries[5].Position || string(snap.Data) != "through 5" {
		t.Fatalf("snapshot %+v, %v; an older one must not replace a newer", snap, err)
	}
	if rest := readAll(t, r, snap.Through); len(rest) != 4 || string(rest[0].Data) != "e6" {
		t.Fatalf("after the snapshot: %v", rest)
	}
	// A reader that stopped before the snapshot lost entries 3 and 4.
	if _, err := r.Read(ctx, entries[2].Position, 0); !errors.Is(err, ErrGap) {
		t.Fatalf("reading past trimmed entries: %v, want ErrGap", err)
	}
	// ... but it is not a loss of the log: the snapshot covers them.
	if st, err := r.Probe(ctx, Presence{Position: entries[2].Position}); err != nil || st.Loss != LossNone || st.Lost || !st.Current {
		t.Fatalf("probe of a reader behind the snapshot: %+v %v", st, err)
	}
}

// TestRedisLossesAreFoundAndRefuseAppends deletes each key of a whole log
// (and all of them), or overwrites it with a value of another type, which
// is the same loss: the probe names what was lost (Redis answers; it is
// not unreachable), appends are refused as ErrBroken as long as the log is
// broken (never ErrUncertain: Redis refused them outright), and a rebuild
// makes it whole as a new epoch.
func TestRedisLossesAreFoundAndRefuseAppends(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage [][]string // redis-cli commands; a key to overwrite is deleted first
		loss   Loss
	}{
		{"log", [][]string{{"DEL", "p:log"}}, LossLog},
		{"epoch", [][]string{{"DEL", "p:epoch"}}, LossEpoch},
		{"snapshot", [][]string{{"DEL", "p:snapshot"}}, LossSnapshot},
		{"every key", [][]string{{"DEL", "p:log", "p:epoch", "p:snapshot"}}, LossAll},
		{"log as a string", [][]string{{"SET", "p:log", "garbage"}}, LossLog},
		{"log as a hash", [][]string{{"HSET", "p:log", "a", "b"}}, LossLog},
		{"snapshot as a string", [][]string{{"SET", "p:snapshot", "x"}}, LossSnapshot},
		{"snapshot through no entry", [][]string{{"HSET", "p:snapshot", "through", "x"}}, LossSnapshot},
		{"epoch as a list", [][]string{{"LPUSH", "p:epoch", "x"}}, LossEpoch},
		{"epoch as a set", [][]string{{"SADD", "p:epoch", "x"}}, LossEpoch},
		{"every key of another type", [][]string{{"SET", "p:log", "x"}, {"LPUSH", "p:epoch", "x"}, {"SET", "p:snapshot", "x"}}, LossAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			r, start := newTestLog(t, srv, "p:")
			ctx := context.Background()
			appendN(t, r, 0, 5)
			entries := readAll(t, r, start)
			if err := r.SaveSnapshot(ctx, entries[2].Position, []byte("through 2")); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range tc.damage {
				if cmd[0] == "DEL" || tc.name == "snapshot through no entry" {
					srv.CLI(cmd...)
				} else {
					srv.Overwrite(cmd...)
				}
			}
			st, err := r.Probe(ctx, Presence{Position: entries[4].Position})
			if err != nil || st.Loss != tc.loss || st.Detail == "" {
				t.Fatalf("probe: %+v %v, want loss %s", st, err, tc.loss)
			}
			if key := tc.damage[0][1]; tc.damage[0][0] != "DEL" && tc.loss != LossAll && !strings.Contains(st.Detail, key) &&
				!strings.Contains(st.Detail, "names no entry") {
				t.Fatalf("the probe's detail %q does not name %s", st.Detail, key)
			}
			err = r.Append(ctx, []byte("refused"), later)
			if !errors.Is(err, ErrBroken) || errors.Is(err, ErrUncertain) {
				t.Fatalf("append to a broken log: %v, want ErrBroken (not ErrUncertain)", err)
			}
			if _, err := r.Entries(ctx); err != nil {
				t.Fatalf("entries of the broken log: %v", err)
			}
			pos := rebuildWith(t, r, "rebuilt")
			if st, err := r.Probe(ctx, Presence{Position: pos}); err != nil || st.Loss != LossNone || !st.Current {
				t.Fatalf("after the rebuild: %+v %v", st, err)
			}
			appendN(t, r, 10, 1)
			if got := readAll(t, r, pos); len(got) != 1 || string(got[0].Data) != "e10" {
				t.Fatalf("after the rebuild: %v", got)
			}
			if snap, _ := r.LoadSnapshot(ctx); string(snap.Data) != "rebuilt" || snap.Through != pos {
				t.Fatalf("snapshot after the rebuild: %+v", snap)
			}
		})
	}
}

// TestRedisFailoverLostEntriesAreFound: entries a reader folded are gone
// from a log that is otherwise whole (as after a failover to a Redis
// replica that lacked them): the probe says so.
func TestRedisFailoverLostEntriesAreFound(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	ctx := context.Background()
	appendN(t, r, 0, 5)
	entries := readAll(t, r, start)
	_, last := splitPosition(entries[4].Position)
	_, prev := splitPosition(entries[2].Position)
	if err := r.client.XTrimMinID(ctx, "p:log", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.client.XDel(ctx, "p:log", last).Err(); err != nil {
		t.Fatal(err)
	}
	st, err := r.Probe(ctx, Presence{Position: entries[4].Position})
	if err != nil || st.Loss != LossNone || !st.Lost || !strings.Contains(st.Detail, last) {
		t.Fatalf("probe: %+v %v; want the lost entry %s found", st, err, last)
	}
	if st, _ := r.Probe(ctx, Presence{Position: entries[2].Position}); st.Lost {
		t.Fatalf("a reader at %s, still in the log, was told it lost entries", prev)
	}
}

// TestRedisRebuildBlocksAppends: while a replica rebuilds, appends are
// refused; the right to rebuild is held by one replica at a time.
func TestRedisRebuildBlocksAppends(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, _ := newTestLog(t, srv, "p:")
	other := openTestRedis(t, srv, "p:")
	ctx := context.Background()
	if won, err := r.BeginRebuild(ctx, time.Minute); err != nil || !won {
		t.Fatal(won, err)
	}
	if won, _ := other.BeginRebuild(ctx, time.Minute); won {
		t.Fatal("two replicas hold the right to rebuild")
	}
	if err := other.Append(ctx, []byte("x"), later); !errors.Is(err, ErrRebuilding) {
		t.Fatalf("append during a rebuild: %v", err)
	}
	if _, err := other.FinishRebuild(ctx, []byte("not mine"), ""); err == nil {
		t.Fatal("a replica without the right finished a rebuild")
	}
	if _, err := r.FinishRebuild(ctx, []byte("mine"), ""); err != nil {
		t.Fatal(err)
	}
	appendN(t, other, 0, 1)
}

// TestRedisAppendAfterItsDeadlineIsRefused: Redis itself refuses an append
// that reaches it after its deadline (by Redis's clock).
func TestRedisAppendAfterItsDeadlineIsRefused(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	ctx := context.Background()
	if _, err := r.Probe(ctx, Presence{Position: start}); err != nil { // learns the clock's offset
		t.Fatal(err)
	}
	if err := r.Append(ctx, []byte("late"), time.Now().Add(-time.Second)); !errors.Is(err, ErrDeadline) {
		t.Fatalf("append past its deadline: %v, want ErrDeadline", err)
	}
	if got := readAll(t, r, start); len(got) != 0 {
		t.Fatalf("a refused append is in the log: %v", got)
	}
}

func TestRedisClaimHasOneWinner(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	wins := 0
	for range 5 {
		won, err := openTestRedis(t, srv, "p:").Claim(ctx, "sweep", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		wins += boolInt(won)
	}
	if wins != 1 {
		t.Fatalf("%d replicas won one claim", wins)
	}
	if won, _ := openTestRedis(t, srv, "p:").Claim(ctx, "snapshot", time.Minute); !won {
		t.Fatal("another duty is claimed separately")
	}
}

func TestRedisUnreachableAndBack(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	appendN(t, r, 0, 2)
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Append(ctx, []byte("lost"), later); err == nil {
		t.Fatal("append to a stopped Redis succeeded")
	}
	srv.Start()
	appendN(t, r, 2, 1)
	if got := readAll(t, r, start); len(got) != 3 || string(got[2].Data) != "e2" {
		t.Fatalf("after Redis came back (appendfsync always): %v", got)
	}
}

func TestOpenRedisRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://localhost:6379", "redis://:pw@host:6379/0?no_such_option=1", "redis://[::1",
		"redis://localhost:6379/0?max_retries=3"} {
		if _, err := OpenRedis(u, RedisOptions{}); err == nil {
			t.Errorf("OpenRedis(%q) succeeded", u)
		}
	}
	if _, err := OpenRedis("redis://localhost:6379/0?max_retries=3", RedisOptions{}); err == nil || !strings.Contains(err.Error(), "applied twice") {
		t.Errorf("max_retries refused without its reason: %v", err)
	}
	r, err := OpenRedis("redis://localhost:26379/0?master_name=mymaster&addr=localhost:26380", RedisOptions{})
	if err != nil {
		t.Fatalf("Sentinel URL: %v", err)
	}
	_ = r.Close()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkRedisAppend measures appends to the log from 16 concurrent
// callers (each append is one script run: its checks of the log's keys and
// the XADD).
//
//	go test ./storage -run '^$' -bench RedisAppend -benchtime 20000x
func BenchmarkRedisAppend(b *testing.B) {
	srv := testenv.StartRedis(b)
	r, err := OpenRedis(srv.URL(), RedisOptions{Prefix: "bench:", Owner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if won, err := r.BeginRebuild(ctx, time.Minute); err != nil || !won {
		b.Fatal(won, err)
	}
	if _, err := r.FinishRebuild(ctx, []byte("fleet"), ""); err != nil {
		b.Fatal(err)
	}
	entry := make([]byte, 200)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Append(ctx, entry, time.Now().Add(time.Minute)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
