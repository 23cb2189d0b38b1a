package applications

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.UnixMilli(1700000000000)

// op is one step of a pending-table scenario.
type op struct {
	at      time.Duration // exporter clock, after t0
	do      string        // "start", "finish", "expire"
	conn    string
	startMs int64 // start: the initializing's event time; finish: the one expected
	ok      bool  // finish: whether the connection is expected pending
}

func TestPendingTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		ops     []op
		len     int
		expired uint64
		evicted uint64
	}{
		{"initializing then connected", 10, []op{
			{do: "start", conn: "a", startMs: 100},
			{at: time.Second, do: "finish", conn: "a", startMs: 100, ok: true},
			{do: "finish", conn: "a"},
		}, 0, 0, 0},
		{"a retried initializing keeps the earliest time", 10, []op{
			{do: "start", conn: "a", startMs: 200},
			{do: "start", conn: "a", startMs: 100},
			{do: "start", conn: "a", startMs: 300},
			{do: "finish", conn: "a", startMs: 100, ok: true},
		}, 0, 0, 0},
		{"connected without initializing", 10, []op{{do: "finish", conn: "a"}}, 0, 0, 0},
		{"expires after its time to live, by the exporter's clock", 10, []op{
			{do: "start", conn: "a", startMs: 100},
			{at: 2 * time.Minute, do: "start", conn: "b", startMs: 100},
			{at: 5*time.Minute - time.Millisecond, do: "expire"},
			{at: 5 * time.Minute, do: "expire"},
			{at: 5 * time.Minute, do: "finish", conn: "a"},
			{at: 5 * time.Minute, do: "finish", conn: "b", startMs: 100, ok: true},
		}, 0, 1, 0},
		{"full: the oldest goes for the newest", 2, []op{
			{do: "start", conn: "a", startMs: 1},
			{do: "start", conn: "b", startMs: 2},
			{do: "start", conn: "c", startMs: 3},
			{do: "finish", conn: "a"},
			{do: "finish", conn: "c", startMs: 3, ok: true},
		}, 1, 0, 1},
		{"full: finished entries are not counted as evicted", 2, []op{
			{do: "start", conn: "a", startMs: 1},
			{do: "start", conn: "b", startMs: 2},
			{do: "finish", conn: "a", startMs: 1, ok: true},
			{do: "start", conn: "c", startMs: 3},
			{do: "start", conn: "d", startMs: 4},
			{do: "finish", conn: "b"},
		}, 2, 0, 1},
		{"a connection that comes back after it expired is new", 10, []op{
			{do: "start", conn: "a", startMs: 1},
			{at: 6 * time.Minute, do: "start", conn: "a", startMs: 2},
			{at: 6 * time.Minute, do: "finish", conn: "a", startMs: 2, ok: true},
		}, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPendingTable(tc.max, DefaultPendingTTL)
			for i, o := range tc.ops {
				k, now := p.key("app", o.conn), t0.Add(o.at)
				switch o.do {
				case "start":
					p.start(k, o.startMs, now)
				case "expire":
					p.expire(now)
				case "finish":
					if ms, ok := p.finish(k); ok != o.ok || (ok && ms != o.startMs) {
						t.Fatalf("op %d: finish %s = %d, %t; want %d, %t", i, o.conn, ms, ok, o.startMs, o.ok)
					}
				}
			}
			if p.len() != tc.len || p.dropped[DropExpired] != tc.expired || p.dropped[DropEvicted] != tc.evicted {
				t.Fatalf("len %d, dropped %v; want %d, expired %d, evicted %d", p.len(), p.dropped, tc.len, tc.expired, tc.evicted)
			}
		})
	}
}

// TestPendingKeysSeparateApplications: the same connection id in two
// applications is two connections.
func TestPendingKeysSeparateApplications(t *testing.T) {
	p := newPendingTable(10, DefaultPendingTTL)
	p.start(p.key("app-1", "c"), 1, t0)
	if _, ok := p.finish(p.key("app-2", "c")); ok {
		t.Fatal("app-2's connection finished app-1's")
	}
	if p.key("ab", "c") == p.key("a", "bc") {
		t.Fatal("the separator does not separate")
	}
}

// TestPendingSlotsStayBounded: whatever the mix of connections that
// connect and that never do, the table never holds more slots than its cap.
func TestPendingSlotsStayBounded(t *testing.T) {
	p := newPendingTable(100, DefaultPendingTTL)
	for i := range 100_000 {
		k := p.key("app", fmt.Sprint(i))
		p.start(k, int64(i), t0)
		if i%10 != 0 { // one connection in ten never connects
			p.finish(k)
		}
		if len(p.slots) > p.max {
			t.Fatalf("after %d connections the table holds %d slots for %d pending", i+1, len(p.slots), p.len())
		}
	}
	// Every connection that never connected is still pending or was
	// evicted (the oldest is always one of them): none is lost or counted
	// twice.
	if p.len() > p.max || uint64(p.len())+p.dropped[DropEvicted] != 10_000 || p.dropped[DropExpired] != 0 {
		t.Fatalf("len %d, dropped %v", p.len(), p.dropped)
	}
}
