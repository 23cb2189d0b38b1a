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
	r, err := OpenRedis(srv.URL(), prefix, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func appendN(t *testing.T, r *Redis, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := r.Append(context.Background(), fmt.Appendf(nil, "e%d", i)); err != nil {
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
	a, b := openTestRedis(t, srv, "p:"), openTestRedis(t, srv, "p:")
	if got, err := a.Read(context.Background(), "", 0); err != nil || len(got) != 0 {
		t.Fatalf("empty log read %v, %v", got, err)
	}
	appendN(t, a, 0, 300)
	appendN(t, b, 300, 700) // more than one read batch
	entries := readAll(t, a, "")
	if len(entries) != 1000 {
		t.Fatalf("read %d entries, want 1000", len(entries))
	}
	for i, e := range entries {
		if want := fmt.Sprintf("e%d", i); string(e.Data) != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Data, want)
		}
	}
	if other := readAll(t, openTestRedis(t, srv, "q:"), ""); len(other) != 0 {
		t.Fatalf("another prefix sees %d entries", len(other))
	}
}

// TestRedisReadWaitsForAnAppend: a read of an empty log with a wait blocks
// in Redis (so that a replica sees another's entry as soon as it is
// appended) and returns the entry appended while it waits.
func TestRedisReadWaitsForAnAppend(t *testing.T) {
	srv := testenv.StartRedis(t)
	r := openTestRedis(t, srv, "p:")
	got := make(chan []Entry, 1)
	go func() {
		entries, _ := r.Read(context.Background(), "", 10*time.Second)
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
	r := openTestRedis(t, srv, "p:")
	ctx := context.Background()
	appendN(t, r, 0, 10)
	entries := readAll(t, r, "")
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
}

func TestRedisLostDataIsAGap(t *testing.T) {
	srv := testenv.StartRedis(t)
	r := openTestRedis(t, srv, "p:")
	appendN(t, r, 0, 3)
	last := readAll(t, r, "")[2].Position
	if err := r.client.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// Stream ids are times: within the millisecond of the old position, new
	// entries sort before it and a reader cannot see them yet. The first one
	// it sees must tell it that the log began anew.
	for i := 3; ; i++ {
		appendN(t, r, i, 1)
		got, err := r.Read(context.Background(), last, 0)
		if errors.Is(err, ErrGap) {
			break
		}
		if err != nil || len(got) > 0 || i > 10000 {
			t.Fatalf("after Redis lost the log: %v, %v; want ErrGap", got, err)
		}
	}
	if snap, err := r.LoadSnapshot(context.Background()); err != nil || snap.Through != "" || snap.Data != nil {
		t.Fatalf("no snapshot: %+v, %v", snap, err)
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
	r := openTestRedis(t, srv, "p:")
	appendN(t, r, 0, 2)
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Append(ctx, []byte("lost")); err == nil {
		t.Fatal("append to a stopped Redis succeeded")
	}
	srv.Start()
	appendN(t, r, 2, 1)
	if got := readAll(t, r, ""); len(got) != 3 || string(got[2].Data) != "e2" {
		t.Fatalf("after Redis came back (appendfsync always): %v", got)
	}
}

func TestOpenRedisRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://localhost:6379", "redis://:pw@host:6379/0?no_such_option=1", "redis://[::1"} {
		if _, err := OpenRedis(u, "p:", "test", nil); err == nil {
			t.Errorf("OpenRedis(%q) succeeded", u)
		}
	}
	r, err := OpenRedis("redis://localhost:26379/0?master_name=mymaster&addr=localhost:26380", "p:", "test", nil)
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
