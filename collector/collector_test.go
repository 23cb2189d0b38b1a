package collector

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// newTestWriter returns an in-memory fleet and its writer on the test clock.
func newTestWriter(t *testing.T) (*fleet.Fleet, *Writer) {
	t.Helper()
	f := fleet.New()
	w := NewWriter(f, nil, WriterOptions{Decode: event.DefaultDecodeOptions, Now: func() time.Time { return fixture.Now }})
	t.Cleanup(w.Close)
	return f, w
}

func TestCollectorGolden(t *testing.T) {
	f, w := newTestWriter(t)
	batch, err := os.ReadFile(filepath.Join("testdata", "batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	fixture.Ingest(t, w, string(batch),
		fixture.EventJSON(1700000000000, "gateway", "started", `{"id":"gw-1","version":"1.24.2.0","machineName":"gw-a","coreCount":4,"deploymentId":"prod","operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64"}`),
		fixture.EventJSON(1700000000500, "mediaserver", "started", `{"id":"ms-2","machineName":"ms-b","coreCount":16,"deploymentId":"prod","region":"us-east"}`),
		fixture.EventJSON(1700000003000, "mediaserver", "unregistered", `{"id":"ms-1","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(1700000004000, "mediaserver", "registered", `{"id":"ms-1","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(1700000004000, "mediaserver", "registered", `{"id":"ms-1","region":"us-east","deploymentId":"prod"}`),
		fixture.EventJSON(1700000001000, "sipconnector", "started", `{"id":"sip-1","coreCount":2,"deploymentId":"prod","region":"eu-west"}`),
		fixture.EventJSON(1700000002000, "sipconnector", "stopped", `{"id":"sip-1","coreCount":2,"deploymentId":"prod","region":"eu-west"}`),
		fixture.EventJSON(1700000001500, "sipconnector", "registered", `{"id":"sip-1"}`),
		fixture.EventJSON(1700000005000, "gateway", "stats", `{"id":"gw-1"}`),
	)
	ingestInvalid(t, w, `{"nonsense":true}`)
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, exposition(t, NewCollector(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(NewCollector(f), want); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(NewCollector(f))
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
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

// exposition renders a collector in the text format.
func exposition(t *testing.T, c prometheus.Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
