package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// TestCountAlso: events handled outside the fleet join the fleet's in
// liveswitch_exporter_events_total when they were not taken (invalid,
// refused), and move the last-received time; the ones taken are not
// counted there.
func TestCountAlso(t *testing.T) {
	f, w, _ := newWriter(t)
	fixture.Ingest(t, w, fixture.EventJSON(1700000000000, "mediaserver", "started", `{"id":"m"}`))
	ingestInvalid(t, w, `{"timestamp":1}`)
	var also fleet.OutcomeCounter
	var res fleet.Result
	res.Outcomes[fleet.OutcomeApplied], res.Outcomes[fleet.OutcomeIgnored], res.Outcomes[fleet.OutcomeRefused] = 3, 1, 2
	also.AddResult(res, fixture.Now.Add(time.Second))
	also.Add(fleet.OutcomeInvalid, 2, fixture.Now)
	also.Add(fleet.OutcomeRefused, 0, fixture.Now.Add(time.Hour)) // nothing counted, time unchanged
	want := `
# HELP liveswitch_exporter_events_total Events received on the webhook, by what the exporter did with them.
# TYPE liveswitch_exporter_events_total counter
liveswitch_exporter_events_total{outcome="applied"} 1
liveswitch_exporter_events_total{outcome="duplicate"} 0
liveswitch_exporter_events_total{outcome="ignored"} 0
liveswitch_exporter_events_total{outcome="invalid"} 3
liveswitch_exporter_events_total{outcome="out_of_order"} 0
liveswitch_exporter_events_total{outcome="refused"} 2
# HELP liveswitch_exporter_last_event_received_timestamp_seconds Exporter clock time at which the last webhook event was received.
# TYPE liveswitch_exporter_last_event_received_timestamp_seconds gauge
liveswitch_exporter_last_event_received_timestamp_seconds 1.700000061e+09
`
	c := NewCollector(f).CountAlso(&also)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"liveswitch_exporter_events_total", "liveswitch_exporter_last_event_received_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	if got := f.Snapshot().Stats.Outcomes[fleet.OutcomeApplied]; got != 1 {
		t.Fatalf("the fleet's own count changed: %d applied", got)
	}
}
