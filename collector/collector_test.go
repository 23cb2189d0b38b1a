package collector

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// newWriter returns an in-memory fleet and the writer that feeds it, on a
// clock the test moves: the metrics are built from what it applies.
func newWriter(t *testing.T) (*fleet.Fleet, *writer.Writer, *fixture.Clock) {
	t.Helper()
	f, clock := fleet.New(), fixture.NewClock()
	w := writer.New(f, nil, writer.Options{Decode: event.DefaultDecodeOptions, Now: clock.Now})
	t.Cleanup(w.Close)
	return f, w, clock
}

func TestCollectorGolden(t *testing.T) {
	f, w, _ := newWriter(t)
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

func ingestInvalid(t *testing.T, w *writer.Writer, body string) {
	t.Helper()
	var invalid *event.InvalidError
	if _, err := w.Ingest(context.Background(), []byte(body)); !errors.As(err, &invalid) {
		t.Fatalf("%s: got %v, want InvalidError", body, err)
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
