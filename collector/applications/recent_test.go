package applications

import (
	"fmt"
	"math"
	"testing"
	"time"
	"unsafe"
)

// TestRecentWindow feeds events at known times of the exporter's clock and
// reads Recent at others: an event counts while its half-minute step is
// one of the last ten, and a slot reused by a later step forgets the older
// one.
func TestRecentWindow(t *testing.T) {
	start := t0.Truncate(recentStep) // a step's first instant
	type fed struct {
		at  time.Duration // after start
		typ string
	}
	for _, tc := range []struct {
		name   string
		events []fed
		at     time.Duration
		want   Recent // ID and Setup left out
	}{
		{"nothing", nil, 0, Recent{}},
		{"just now", []fed{{0, "channel.activated"}}, 0, Recent{Events: 1}},
		{"end of the window", []fed{{0, "channel.activated"}}, RecentWindow - time.Millisecond, Recent{Events: 1}},
		{"out of the window", []fed{{0, "channel.activated"}}, RecentWindow, Recent{}},
		{"an hour later", []fed{{0, "channel.activated"}}, time.Hour, Recent{}},
		{"connected and failed", []fed{{0, connected}, {time.Minute, failed}, {2 * time.Minute, connected}, {3 * time.Minute, "client.stats"}},
			4 * time.Minute, Recent{Events: 4, Connected: 2, Failed: 1}},
		{"the oldest step drops first", []fed{{0, failed}, {time.Minute, connected}}, RecentWindow + time.Second,
			Recent{Events: 1, Connected: 1}},
		{"a slot reused by a later step", []fed{{0, failed}, {RecentWindow, connected}}, RecentWindow,
			Recent{Events: 1, Connected: 1}},
		{"a slot reused after a long silence", []fed{{0, failed}, {0, failed}, {10 * RecentWindow, connected}}, 10 * RecentWindow,
			Recent{Events: 1, Connected: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r recent
			for _, e := range tc.events {
				r.count(start.Add(e.at), e.typ, 0, false)
			}
			got := r.sum("app", start.Add(tc.at))
			tc.want.ID = "app"
			got.Setup = tc.want.Setup
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRecentSetupQuantiles checks the estimates against quantiles worked
// out by hand, interpolating as histogram_quantile does.
func TestRecentSetupQuantiles(t *testing.T) {
	for _, tc := range []struct {
		name           string
		setups         []float64
		p50, p95       float64
		above95, empty bool
	}{
		{name: "none", empty: true},
		// 10 setups in (1, 1.5]: rank 5 of 10 is halfway, rank 9.5 at 95%.
		{name: "one bucket", setups: repeat(1.2, 10), p50: 1.25, p95: 1.475},
		// 1 in (0, 0.1], 9 in (2, 3]: rank 5 is 4/9 into (2, 3].
		{name: "two buckets", setups: append([]float64{0.05}, repeat(2.5, 9)...), p50: 2 + 4.0/9, p95: 2 + 8.5/9},
		{name: "bound included", setups: repeat(0.1, 4), p50: 0.05, p95: 0.095},
		// 19 fast ones and 1 past 30 s: p95 (rank 19) is the last of the fast.
		{name: "one very slow", setups: append(repeat(0.3, 19), 45), p50: 0.25 + 0.25*10/19, p95: 0.5},
		{name: "most beyond the last bound", setups: append(repeat(40, 3), 0.3), p50: 30, p95: 30, above95: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r recent
			now := t0
			for _, s := range tc.setups {
				r.count(now, connected, s, true)
			}
			sum := r.sum("app", now)
			p50, _, ok50 := sum.SetupQuantile(0.5)
			p95, above, ok95 := sum.SetupQuantile(0.95)
			if tc.empty {
				if ok50 || ok95 {
					t.Fatalf("quantiles of no setup: %v %v", p50, p95)
				}
				return
			}
			if !ok50 || !ok95 || math.Abs(p50-tc.p50) > 1e-9 || math.Abs(p95-tc.p95) > 1e-9 || above != tc.above95 {
				t.Errorf("p50 %v p95 %v (above %v), want %v %v (above %v)", p50, p95, above, tc.p50, tc.p95, tc.above95)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestRecentFailureRatio(t *testing.T) {
	for _, tc := range []struct {
		connected, failed uint64
		want              float64
		ok                bool
	}{
		{0, 0, 0, false}, {10, 0, 0, true}, {0, 3, 1, true}, {98, 2, 0.02, true},
	} {
		r := Recent{Connected: tc.connected, Failed: tc.failed}
		if got, ok := r.FailureRatio(); got != tc.want || ok != tc.ok {
			t.Errorf("%d connected, %d failed: %v %v, want %v %v", tc.connected, tc.failed, got, ok, tc.want, tc.ok)
		}
	}
}

// TestTrackerRecent runs events through the Tracker: the recent counts
// agree with what was fed, setup times land where the histogram puts
// them, and only the applications counted have any (refused ones do
// not take memory).
func TestTrackerRecent(t *testing.T) {
	if len(SetupBuckets)+1 != setupBins {
		t.Fatalf("setupBins %d does not fit %d buckets", setupBins, len(SetupBuckets))
	}
	if size := unsafe.Sizeof(recent{}); size > 1024 {
		t.Errorf("an application's recent counts take %d bytes", size)
	}
	tr, now := newTestTracker(t, 2, 10)
	mustIngest(t, tr, batch(
		appEvent(100, "connection.initializing", "app-a", "c1", "sfu"),
		appEvent(1300, "connection.connected", "app-a", "c1", "sfu"), // 1.2 s
		appEvent(200, "connection.initializing", "app-a", "c2", "sfu"),
		appEvent(900, "connection.failed", "app-a", "c2", "sfu"),
		appEvent(0, "channel.activated", "app-b", "", ""),
		appEvent(0, "channel.renamed", "app-b", "", ""), // not a documented type: ignored
	))
	for i := range 5 {
		mustIngest(t, tr, appEvent(0, "channel.activated", fmt.Sprintf("refused-%d", i), "", ""))
	}
	got := tr.Recent()
	want := []Recent{
		{ID: "app-a", Events: 4, Connected: 1, Failed: 1},
		{ID: "app-b", Events: 1},
	}
	want[0].Setup[5] = 1 // (1, 1.5]
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Recent\n got %+v\nwant %+v", got, want)
	}
	*now = now.Add(RecentWindow)
	for _, r := range tr.Recent() {
		if r.Events != 0 {
			t.Errorf("%s still has %d events %s later", r.ID, r.Events, RecentWindow)
		}
	}
}
