package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestRedisRefusalIsNotUncertain: an append Redis refused with an error of
// its own did not happen, and says what Redis answered; only an append
// whose answer was lost is ErrUncertain.
func TestRedisRefusalIsNotUncertain(t *testing.T) {
	srv := testenv.StartRedisWith(t, testenv.RedisOptions{Args: []string{"--maxmemory", "4mb", "--maxmemory-policy", "noeviction"}})
	r, _ := newTestLog(t, srv, "p:")
	ctx := context.Background()
	big := strings.Repeat("x", 256<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = r.Append(ctx, []byte(big), later)
	}
	if err == nil || errors.Is(err, ErrUncertain) || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("append to a full Redis: %v; want a refusal naming OOM, not ErrUncertain", err)
	}
	srv.CLI("CONFIG", "SET", "maxmemory", "0")
	srv.CLI("CONFIG", "SET", "min-replicas-to-write", "1")
	err = r.Append(ctx, []byte("x"), later)
	if err == nil || errors.Is(err, ErrUncertain) || !strings.Contains(err.Error(), "NOREPLICAS") {
		t.Fatalf("append refused for want of Redis replicas: %v; want a refusal naming NOREPLICAS, not ErrUncertain", err)
	}
	srv.CLI("CONFIG", "SET", "min-replicas-to-write", "0")
	srv.Pause()
	defer srv.Resume()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := r.Append(short, []byte("x"), later); !errors.Is(err, ErrUncertain) {
		t.Fatalf("append to a hung Redis: %v; want ErrUncertain", err)
	}
}

// TestRedisRebuildLockExpires: a lock left with no expiry (by an old
// version, or by hand) is given one by the next probe and by the next
// attempt to rebuild, so that it cannot stand for good; a key of another
// type at its name is not a lock.
func TestRedisRebuildLockExpires(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	ctx := context.Background()
	srv.CLI("SET", "p:rebuild", "someone")
	st, err := r.Probe(ctx, Presence{Position: start})
	if err != nil || !st.Rebuilding || len(st.Repaired) == 0 {
		t.Fatalf("probe of a lock with no expiry: %+v %v", st, err)
	}
	if ttl := srv.CLI("PTTL", "p:rebuild"); ttl == "-1" || ttl == "-2" {
		t.Fatalf("the lock still has no expiry (PTTL %s)", ttl)
	}
	srv.CLI("PERSIST", "p:rebuild")
	if won, err := r.BeginRebuild(ctx, time.Minute); err != nil || won {
		t.Fatalf("begin rebuild under a held lock: %v %v", won, err)
	}
	if ttl := srv.CLI("PTTL", "p:rebuild"); ttl == "-1" {
		t.Fatal("BeginRebuild left a lock with no expiry")
	}
	srv.CLI("DEL", "p:rebuild")
	srv.CLI("HSET", "p:rebuild", "a", "b")
	if st, err := r.Probe(ctx, Presence{Position: start}); err != nil || st.Rebuilding {
		t.Fatalf("a hash at the lock's name: %+v %v; want it dropped", st, err)
	}
	appendN(t, r, 0, 1)
}

// TestRedisLogLostBeforeFirstSnapshot: the stream of an epoch exists from
// its start, so that its loss is found (and appends refused) even before
// the first snapshot names an entry of it.
func TestRedisLogLostBeforeFirstSnapshot(t *testing.T) {
	srv := testenv.StartRedis(t)
	r, start := newTestLog(t, srv, "p:")
	ctx := context.Background()
	if st, err := r.Probe(ctx, Presence{Position: start}); err != nil || st.Loss != LossNone {
		t.Fatalf("a new, empty log: %+v %v", st, err)
	}
	appendN(t, r, 0, 3)
	entries := readAll(t, r, start)
	srv.CLI("DEL", "p:log")
	if st, err := r.Probe(ctx, Presence{Position: entries[2].Position}); err != nil || st.Loss != LossLog {
		t.Fatalf("probe after the log was deleted: %+v %v; want loss log", st, err)
	}
	if err := r.Append(ctx, []byte("refused"), later); !errors.Is(err, ErrBroken) {
		t.Fatalf("append after the log was deleted: %v; want ErrBroken", err)
	}
}

// TestRedisPresence: each probe publishes the caller's position and returns
// the other replicas', with whether the log still holds what they folded.
func TestRedisPresence(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, start := newTestLog(t, srv, "p:")
	b := openTestRedis(t, srv, "p:")
	ctx := context.Background()
	appendN(t, a, 0, 3)
	entries := readAll(t, a, start)
	if _, err := a.Probe(ctx, Presence{Position: entries[2].Position, Checked: entries[1].Position, Digest: "d1"}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Probe(ctx, Presence{Position: entries[0].Position})
	if err != nil || len(st.Peers) != 1 {
		t.Fatalf("b's probe: %+v %v; want a as its one peer", st, err)
	}
	p := st.Peers[0]
	if p.Name != a.Name() || p.Position != entries[2].Position || p.Checked != entries[1].Position || p.Digest != "d1" ||
		!p.Covered || p.PublishedMs > st.Now || p.PublishedMs < st.Now-5000 {
		t.Fatalf("a as b sees it: %+v (now %d)", p, st.Now)
	}
	srv.CLI("DEL", "p:log")
	if st, _ := b.Probe(ctx, Presence{Position: entries[0].Position}); len(st.Peers) != 1 || st.Peers[0].Covered {
		t.Fatalf("after the log was deleted: %+v; a's entries are no longer in the log", st.Peers)
	}
	srv.CLI("SET", "p:replicas", "x")
	if st, err := b.Probe(ctx, Presence{Position: entries[0].Position}); err != nil || len(st.Repaired) == 0 {
		t.Fatalf("presences overwritten with a string: %+v %v; want them dropped and said", st, err)
	}
	if st, _ := a.Probe(ctx, Presence{Position: entries[2].Position}); len(st.Peers) != 1 || st.Peers[0].Name != b.Name() {
		t.Fatalf("after the presences were dropped: %+v; want b's again", st.Peers)
	}
}

// TestRedisClaimHeals: a claim of another type is no claim, and a claim
// with no expiry is given one.
func TestRedisClaimHeals(t *testing.T) {
	srv := testenv.StartRedis(t)
	r := openTestRedis(t, srv, "p:")
	ctx := context.Background()
	srv.CLI("HSET", "p:claim:sweep", "a", "b")
	if won, err := r.Claim(ctx, "sweep", time.Minute); err != nil || !won {
		t.Fatalf("claim over a hash: %v %v", won, err)
	}
	srv.CLI("SET", "p:claim:snapshot", "someone")
	if won, err := r.Claim(ctx, "snapshot", time.Minute); err != nil || won {
		t.Fatalf("claim held by another: %v %v", won, err)
	}
	if ttl := srv.CLI("PTTL", "p:claim:snapshot"); ttl == "-1" {
		t.Fatal("a claim with no expiry was left without one")
	}
}

// TestAhead: positions order within an epoch by entry, and across epochs by
// the generation each rebuild names; an epoch of an earlier version is
// generation 0.
func TestAhead(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.x/5-0", "1.x/4-9", true},
		{"1.x/4-9", "1.x/5-0", false},
		{"1.x/5-0", "1.x/5-0", false},
		{"2.y/", "1.x/9-9", true},
		{"1.x/9-9", "2.y/", false},
		{"1.x/1-0", "abcdef/9-9", true}, // an earlier version's epoch
		{"abcdef/2-0", "abcdef/1-0", true},
		{"1.x/1-0", "", true},
		{"", "1.x/1-0", false},
		{"1.x/1-0", "1.y/2-0", false}, // two epochs of one generation: neither
	} {
		if got := Ahead(tc.a, tc.b); got != tc.want {
			t.Errorf("Ahead(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	if e := nextEpoch("4.abc/12-0"); !strings.HasPrefix(e, "5.") {
		t.Errorf("the epoch after generation 4 is %q", e)
	}
}

// TestRedisTakesAnEarlierVersionsLog: a log as versions before this one
// left it (an epoch without generation, a snapshot without a stream of its
// epoch, no stream before the first append) is whole: appends go on, and a
// rebuild from it starts generation 1.
func TestRedisTakesAnEarlierVersionsLog(t *testing.T) {
	srv := testenv.StartRedis(t)
	r := openTestRedis(t, srv, "p:")
	ctx := context.Background()
	srv.CLI("SET", "p:epoch", "0123456789abcdef")
	srv.CLI("HSET", "p:snapshot", "epoch", "0123456789abcdef", "through", "", "data", "old fleet")
	start := "0123456789abcdef/"
	if st, err := r.Probe(ctx, Presence{Position: start}); err != nil || st.Loss != LossNone || !st.Current {
		t.Fatalf("probe of an earlier version's log: %+v %v", st, err)
	}
	appendN(t, r, 0, 2)
	entries := readAll(t, r, start)
	if len(entries) != 2 {
		t.Fatalf("read %v", entries)
	}
	if won, err := r.BeginRebuild(ctx, time.Minute); err != nil || !won {
		t.Fatal(won, err)
	}
	pos, err := r.FinishRebuild(ctx, []byte("rebuilt"), entries[1].Position)
	if err != nil || !strings.HasPrefix(pos, "1.") || !Ahead(pos, entries[1].Position) {
		t.Fatalf("rebuilt at %q (%v); want generation 1, ahead of the earlier version's", pos, err)
	}
}
