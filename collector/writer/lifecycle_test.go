package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

func newLimitedWriter(t *testing.T, store storage.Store, limits fleet.Limits) (*fleet.Fleet, *Writer, *fixture.Clock) {
	t.Helper()
	clock := fixture.NewClock()
	f := fleet.New()
	w := New(f, store, Options{Decode: event.DefaultDecodeOptions, Limits: limits, Now: clock.Now})
	t.Cleanup(w.Close)
	return f, w, clock
}

func TestRetentionAndStaleness(t *testing.T) {
	f, w, clock := newLimitedWriter(t, nil, fleet.Limits{Retention: time.Hour, StaleAfter: 3 * time.Hour})
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"stops"}`),
		fixture.EventJSON(fixture.At(time.Minute), "mediaserver", "stopped", `{"id":"stops"}`),
		fixture.EventJSON(fixture.At(0), "gateway", "started", `{"id":"quiet"}`),
		fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"chatty"}`),
	)
	for _, step := range []struct {
		advance   time.Duration
		heartbeat bool
		forgotten int
		left      []string
	}{
		{59 * time.Minute, false, 0, []string{"quiet", "chatty", "stops"}},
		{2 * time.Minute, true, 1, []string{"quiet", "chatty"}}, // stopped one hour ago
		{2*time.Hour - time.Minute - time.Second, false, 0, []string{"quiet", "chatty"}},
		{time.Second, false, 1, []string{"chatty"}}, // three hours without an event
	} {
		clock.Advance(step.advance)
		if step.heartbeat {
			fixture.Ingest(t, w, fixture.EventJSON(clock.Now().UnixMilli(), "mediaserver", "stats", `{"id":"chatty"}`))
		}
		n, err := w.Sweep(context.Background())
		if err != nil || n != step.forgotten {
			t.Fatalf("at +%s: forgot %d (%v), want %d", clock.Now().Sub(fixture.Now), n, err, step.forgotten)
		}
		if got := ids(f); !reflect.DeepEqual(got, step.left) {
			t.Fatalf("at +%s: tracking %v, want %v", clock.Now().Sub(fixture.Now), got, step.left)
		}
	}
	stats := f.Snapshot().Stats
	if stats.Forgotten[fleet.ForgetRetention] != 1 || stats.Forgotten[fleet.ForgetStale] != 1 {
		t.Fatalf("forgotten counters: %v", stats.Forgotten)
	}
}

func ids(f *fleet.Fleet) []string {
	var out []string
	for _, s := range f.Snapshot().Servers {
		out = append(out, s.Info.ID)
	}
	return out
}

func TestMaxServersEvictsLongestStopped(t *testing.T) {
	f, w, _ := newLimitedWriter(t, nil, fleet.Limits{MaxServers: 3})
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(2), "mediaserver", "stopped", `{"id":"b"}`),
		fixture.EventJSON(fixture.At(1), "mediaserver", "stopped", `{"id":"a"}`),
		fixture.EventJSON(fixture.At(3), "mediaserver", "started", `{"id":"c"}`),
	)
	for _, step := range []struct {
		id      string
		outcome fleet.Outcome
		left    []string
	}{
		{"d", fleet.OutcomeApplied, []string{"b", "c", "d"}}, // a stopped longest ago
		{"e", fleet.OutcomeApplied, []string{"c", "d", "e"}},
		{"f", fleet.OutcomeRefused, []string{"c", "d", "e"}}, // nothing stopped
	} {
		res := fixture.Ingest(t, w, fixture.EventJSON(fixture.At(10), "mediaserver", "started", fmt.Sprintf(`{"id":%q}`, step.id)))[0]
		if res.Outcomes[step.outcome] != 1 {
			t.Fatalf("%s: %s, want %s", step.id, res, step.outcome)
		}
		if got := ids(f); !reflect.DeepEqual(got, step.left) {
			t.Fatalf("after %s: %v, want %v", step.id, got, step.left)
		}
	}
	// An event for a tracked server is never refused.
	if res := fixture.Ingest(t, w, fixture.EventJSON(fixture.At(11), "mediaserver", "registered", `{"id":"c"}`))[0]; !res.AllApplied() {
		t.Fatalf("tracked server: %s", res)
	}
	stats := f.Snapshot().Stats
	if stats.Forgotten[fleet.ForgetEvicted] != 2 || stats.Outcomes[fleet.OutcomeRefused] != 1 || stats.Limit != 3 {
		t.Fatalf("stats: %+v", stats)
	}
}

// TestFloodOfDistinctIDs sends 100,000 distinct servers to a fleet capped at
// 1,000, through the real store: the fleet, the store and the heap stay
// bounded.
func TestFloodOfDistinctIDs(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f, w, _ := newLimitedWriter(t, store, fleet.Limits{MaxServers: 1000})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const total, perBody = 100_000, 1000
	for b := 0; b < total/perBody; b++ {
		events := make([]string, perBody)
		for i := range events {
			action := "started"
			if i%2 == 0 {
				action = "stopped" // half of them evictable
			}
			events[i] = fixture.EventJSON(fixture.At(time.Duration(b*perBody+i)), "mediaserver", action,
				fmt.Sprintf(`{"id":"flood-%d-%d","machineName":"%s"}`, b, i, strings.Repeat("m", 64)))
		}
		fixture.Ingest(t, w, "["+strings.Join(events, ",")+"]")
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := f.Len(); n != 1000 {
		t.Fatalf("tracking %d servers, limit 1000", n)
	}
	stored := 0
	if err := store.Load(context.Background(), func(string, []byte) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if stored != 1000 {
		t.Fatalf("%d records stored, limit 1000", stored)
	}
	stats := f.Snapshot().Stats
	if stats.Outcomes[fleet.OutcomeApplied]+stats.Outcomes[fleet.OutcomeRefused] != total || stats.Outcomes[fleet.OutcomeRefused] == 0 {
		t.Fatalf("outcomes: %v", stats.Outcomes)
	}
	// 1,000 servers take well under 2 MiB; 100,000 would take tens of MiB.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes for a fleet of 1000", grew)
	}
}

func TestForget(t *testing.T) {
	f, w, _ := newLimitedWriter(t, nil, fleet.Limits{})
	fixture.Ingest(t, w, fixture.EventJSON(fixture.At(0), "gateway", "started", `{"id":"g"}`))
	for _, want := range []bool{true, false} {
		found, err := w.Forget(context.Background(), fleet.Key{Origin: "gateway", ID: "g"})
		if err != nil || found != want || f.Len() != 0 {
			t.Fatalf("forget: %v %v with %d left, want %v", found, err, f.Len(), want)
		}
	}
	if n := f.Snapshot().Stats.Forgotten[fleet.ForgetDeleted]; n != 1 {
		t.Fatalf("deleted counter: %d", n)
	}
}

// TestRestoreFromStore: a new writer on the same store sees the same fleet.
func TestRestoreFromStore(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, w, _ := newLimitedWriter(t, store, fleet.Limits{})
	fixture.Ingest(t, w,
		fixture.EventJSON(fixture.At(0), "mediaserver", "started", `{"id":"m","region":"eu","coreCount":8}`),
		fixture.EventJSON(fixture.At(1), "mediaserver", "registered", `{"id":"m"}`),
		fixture.EventJSON(fixture.At(2), "mediaserver", "unregistered", `{"id":"m"}`),
		fixture.EventJSON(fixture.At(3), "mediaserver", "registered", `{"id":"m"}`),
		fixture.EventJSON(fixture.At(0), "gateway", "started", `{"id":"g/1"}`),
		fixture.EventJSON(fixture.At(1), "gateway", "started", `{"id":"gone"}`),
	)
	if _, err := w.Forget(context.Background(), fleet.Key{Origin: "gateway", ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	want := f.Snapshot().Servers
	w.Close()
	store.Close()
	if got := reopen(t, dir).Snapshot().Servers; !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v\nwant %+v", got, want)
	}
}

// reopen opens the store in dir again and restores a fleet from it, as an
// exporter restarting would.
func reopen(t *testing.T, dir string) *fleet.Fleet {
	t.Helper()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	restored := fleet.New()
	w := New(restored, store, Options{})
	t.Cleanup(w.Close)
	if err := w.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return restored
}

// TestStorageFailureChangesNothing: when the store refuses a commit, the
// request fails with ErrStorage and the fleet is as it was.
func TestStorageFailureChangesNothing(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, w, _ := newLimitedWriter(t, store, fleet.Limits{})
	fixture.Ingest(t, w, fixture.EventJSON(fixture.At(0), "mediaserver", "registered", `{"id":"m"}`))
	before := f.Snapshot().Servers
	store.Close() // every later commit fails
	_, err = w.Ingest(context.Background(), []byte(fixture.EventJSON(fixture.At(1), "mediaserver", "unregistered", `{"id":"m"}`)))
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("got %v, want ErrStorage", err)
	}
	snap := f.Snapshot()
	if !reflect.DeepEqual(snap.Servers, before) || snap.Stats.StorageErrors != 1 || snap.Stats.Outcomes[fleet.OutcomeApplied] != 1 {
		t.Fatalf("after a failed commit: %+v", snap)
	}
}

// TestStorageErrorsLoggedOncePerInterval: a failing store under a flood of
// webhooks logs one error line per interval, with the number held back,
// and every request gets a hint that names no file.
func TestStorageErrorsLoggedOncePerInterval(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	clock := fixture.NewClock()
	w := New(fleet.New(), store, Options{Decode: event.DefaultDecodeOptions, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer w.Close()
	store.Close() // every commit fails from now on
	for i := range 100 {
		_, err := w.Ingest(context.Background(), []byte(fixture.EventJSON(fixture.At(time.Duration(i)), "mediaserver", "started", `{"id":"m"}`)))
		var stored *StorageError
		if !errors.As(err, &stored) || strings.Contains(stored.Hint, dir) || !strings.Contains(stored.Hint, "retry later") {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 49 {
			clock.Advance(errorLogInterval)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "repeated=49") {
		t.Fatalf("want 2 error lines, the second with repeated=49:\n%s", logs.String())
	}
}
