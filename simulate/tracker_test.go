package simulate

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
)

// series indexes gathered families by name, then by their labels'
// values joined with "/" (in the order of the labels' names).
func series(t *testing.T, g prometheus.Gatherer) map[string]map[string]*dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]*dto.Metric{}
	for _, mf := range families {
		out[mf.GetName()] = map[string]*dto.Metric{}
		for _, m := range mf.GetMetric() {
			key := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += "/"
				}
				key += l.GetValue()
			}
			out[mf.GetName()][key] = m
		}
	}
	return out
}

// TestSimulatedApplicationsMatchTheTracker: the simulator's applications,
// posted in batches to a Tracker, give every series the report predicts
// from what was acknowledged: events, failures by type, cause and phase,
// and the count and sum of every histogram (setup, connection duration,
// channel duration and size), and the live levels.
func TestSimulatedApplicationsMatchTheTracker(t *testing.T) {
	tracker := applications.New(applications.Options{Decode: event.DefaultDecodeOptions, MaxApplications: 10})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := tracker.Ingest(r.Context(), body, nil); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	rep := Run(t.Context(), NewAppGenerator(testApps, nil), LoadConfig{Target: srv.URL, Concurrency: 3, Count: 8000, Batch: 10})
	if rep.Acked() != 8000 {
		t.Fatalf("%d of 8000 acknowledged", rep.Acked())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(tracker)
	compareWithTally(t, series(t, reg), rep.Applications, testApps.IDs)
}

// compareWithTally checks the application series of one exporter (or
// replicas' sums), indexed as series does, against a report's tally.
func compareWithTally(t *testing.T, got map[string]map[string]*dto.Metric, tally *AppTally, apps []string) {
	t.Helper()
	counter := func(family, key string) float64 {
		if m := got[family][key]; m != nil {
			return m.GetCounter().GetValue()
		}
		return 0
	}
	compareCounts := func(family, app string, want map[string]int) {
		for k, n := range want {
			if c := counter(family, app+"/"+k); c != float64(n) {
				t.Errorf("%s{%s/%s} = %v, the simulator had %d acknowledged", family, app, k, c, n)
			}
		}
	}
	compareTimes := func(family, key string, want []time.Duration) {
		var sum time.Duration
		for _, d := range want {
			sum += d
		}
		h := got[family][key].GetHistogram()
		if h.GetSampleCount() != uint64(len(want)) || math.Abs(h.GetSampleSum()-sum.Seconds()) > 1e-6 {
			t.Errorf("%s{%s}: count %d sum %.3f, the simulator had %d summing to %.3f", family, key, h.GetSampleCount(), h.GetSampleSum(), len(want), sum.Seconds())
		}
	}
	for _, app := range apps {
		compareCounts("liveswitch_application_events_total", app, tally.Events[app])
		compareCounts("liveswitch_application_connection_failures_total", app, tally.Failures[app])
		compareCounts("liveswitch_application_connection_failures_by_cause_total", app, tally.Causes[app])
		compareCounts("liveswitch_application_connection_failures_by_phase_total", app, tally.Phases[app])
		compareTimes("liveswitch_application_connection_setup_seconds", app, tally.Setups[app])
		compareTimes("liveswitch_application_channel_duration_seconds", app, tally.Channels[app])
		for typ, d := range tally.Durations[app] {
			compareTimes("liveswitch_application_connection_duration_seconds", app+"/"+typ, d)
		}
		peaks, sum := tally.Peaks[app], 0
		for _, p := range peaks {
			sum += p
		}
		if h := got["liveswitch_application_channel_peak_clients"][app].GetHistogram(); h.GetSampleCount() != uint64(len(peaks)) || h.GetSampleSum() != float64(sum) {
			t.Errorf("channel peaks of %s: count %d sum %v, the simulator had %d summing to %d", app, h.GetSampleCount(), h.GetSampleSum(), len(peaks), sum)
		}
		lv := tally.Live(app)
		for family, want := range map[string]int{"liveswitch_application_active_channels": lv.Channels,
			"liveswitch_application_active_clients": lv.Clients, "liveswitch_application_active_connections": lv.Connections} {
			if v := got[family][app].GetGauge().GetValue(); v != float64(want) {
				t.Errorf("%s{%s} = %v, the simulator left %d", family, app, v, want)
			}
		}
		if len(tally.Channels[app]) == 0 || len(tally.Durations[app]) == 0 || len(tally.Causes[app]) == 0 {
			t.Errorf("%s: nothing to compare (channels %d, durations %v, causes %v)", app, len(tally.Channels[app]), tally.Durations[app], tally.Causes[app])
		}
	}
}
