package writer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// newTestWriter returns an in-memory fleet and its writer on the test clock.
func newTestWriter(t *testing.T) (*fleet.Fleet, *Writer) {
	t.Helper()
	f := fleet.New()
	w := New(f, nil, Options{Decode: event.DefaultDecodeOptions, Now: func() time.Time { return fixture.Now }})
	t.Cleanup(w.Close)
	return f, w
}

func ingestInvalid(t *testing.T, w *Writer, body string) {
	t.Helper()
	var invalid *event.InvalidError
	if _, err := w.Ingest(context.Background(), []byte(body)); !errors.As(err, &invalid) {
		t.Fatalf("%s: got %v, want InvalidError", body, err)
	}
}

func TestIngestResults(t *testing.T) {
	_, w := newTestWriter(t)
	started := fixture.EventJSON(1700000000000, "mediaserver", "started", `{"id":"m"}`)
	res := fixture.Ingest(t, w, started, started, "["+started+","+fixture.EventJSON(1700000001000, "mediaserver", "stopped", `{"id":"m"}`)+"]")
	if !res[0].AllApplied() || res[0].Total() != 1 {
		t.Errorf("first delivery: %s", res[0])
	}
	if res[1].AllApplied() || res[1].Outcomes[fleet.OutcomeDuplicate] != 1 {
		t.Errorf("retry: %s", res[1])
	}
	if got := res[2].String(); got != "applied=1 duplicate=1" {
		t.Errorf("batch: %s", got)
	}
}

// TestRejectedBatchChangesNothing: one bad event rejects the whole batch.
func TestRejectedBatchChangesNothing(t *testing.T) {
	f, w := newTestWriter(t)
	good := fixture.EventJSON(1700000000000, "mediaserver", "started", `{"id":"m"}`)
	ingestInvalid(t, w, "["+good+`,{"timestamp":1}]`)
	snap := f.Snapshot()
	if len(snap.Servers) != 0 || snap.Stats.Outcomes[fleet.OutcomeApplied] != 0 || snap.Stats.Outcomes[fleet.OutcomeInvalid] != 2 {
		t.Fatalf("after a rejected batch: %+v", snap)
	}
}
