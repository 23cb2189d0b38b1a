package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// replay gives out recorded events, the same to every run.
type replay struct {
	events []simulate.Event
	next   int
}

func (r *replay) Next() simulate.Event {
	ev := r.events[r.next%len(r.events)]
	r.next++
	return ev
}

// recordApplications records n events of three simulated applications on
// a clock that starts 20 minutes ago and steps 10 ms at every reading, so
// that every run posts the same bodies, all within the exporter's
// --application.max-event-age.
func recordApplications(n int, ids []string) []simulate.Event {
	clock := time.Now().Add(-20 * time.Minute)
	gen := simulate.NewAppGenerator(simulate.AppConfig{Seed: 11, IDs: ids}, func() time.Time {
		clock = clock.Add(10 * time.Millisecond)
		return clock
	})
	events := make([]simulate.Event, n)
	for i := range events {
		events[i] = gen.Next()
	}
	return events
}

// applicationFamilies are the families of the application webhooks, with
// how replicas combine them: counters and histograms are each replica's
// (summed), gauges the shared state's (the max).
var applicationFamilies = []string{
	"liveswitch_application_events_total",
	"liveswitch_application_connection_failures_total",
	"liveswitch_application_connection_failures_by_cause_total",
	"liveswitch_application_connection_failures_by_phase_total",
	"liveswitch_application_connection_setup_seconds",
	"liveswitch_application_connection_duration_seconds",
	"liveswitch_application_channel_duration_seconds",
	"liveswitch_application_channel_peak_clients",
	"liveswitch_application_active_channels",
	"liveswitch_application_active_clients",
	"liveswitch_application_active_connections",
	"liveswitch_application_largest_channel_clients",
}

// combine adds up the families of several replicas as the bundled queries
// do: sums of counters and of histograms (count, sum and every bucket),
// the max of gauges.
func combine(scrapes ...map[string]*dto.MetricFamily) map[string]*dto.MetricFamily {
	out := map[string]*dto.MetricFamily{}
	for _, name := range applicationFamilies {
		byLabels := map[string]*dto.Metric{}
		var typ dto.MetricType
		for _, families := range scrapes {
			mf := families[name]
			if mf == nil {
				continue
			}
			typ = mf.GetType()
			for _, m := range mf.GetMetric() {
				key := fmt.Sprint(m.GetLabel())
				acc := byLabels[key]
				if acc == nil {
					byLabels[key] = cloneMetric(m)
					continue
				}
				switch typ {
				case dto.MetricType_COUNTER:
					*acc.Counter.Value += m.GetCounter().GetValue()
				case dto.MetricType_GAUGE:
					*acc.Gauge.Value = math.Max(acc.GetGauge().GetValue(), m.GetGauge().GetValue())
				case dto.MetricType_HISTOGRAM:
					*acc.Histogram.SampleCount += m.GetHistogram().GetSampleCount()
					*acc.Histogram.SampleSum += m.GetHistogram().GetSampleSum()
					for i, b := range m.GetHistogram().GetBucket() {
						*acc.Histogram.Bucket[i].CumulativeCount += b.GetCumulativeCount()
					}
				}
			}
		}
		mf := &dto.MetricFamily{Name: &name, Type: &typ}
		for _, key := range slices.Sorted(maps.Keys(byLabels)) {
			m := byLabels[key]
			if m.Histogram != nil { // sums of milliseconds, added in another order
				*m.Histogram.SampleSum = math.Round(m.GetHistogram().GetSampleSum()*1e6) / 1e6
			}
			mf.Metric = append(mf.Metric, m)
		}
		out[name] = mf
	}
	return out
}

// cloneMetric copies the values of m, so that adding to the copy leaves m.
func cloneMetric(m *dto.Metric) *dto.Metric {
	c := &dto.Metric{Label: m.GetLabel()}
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	switch {
	case m.Counter != nil:
		c.Counter = &dto.Counter{Value: f(m.GetCounter().GetValue())}
	case m.Gauge != nil:
		c.Gauge = &dto.Gauge{Value: f(m.GetGauge().GetValue())}
	case m.Histogram != nil:
		h := m.GetHistogram()
		c.Histogram = &dto.Histogram{SampleCount: u(h.GetSampleCount()), SampleSum: f(h.GetSampleSum())}
		for _, b := range h.GetBucket() {
			c.Histogram.Bucket = append(c.Histogram.Bucket, &dto.Bucket{UpperBound: f(b.GetUpperBound()), CumulativeCount: u(b.GetCumulativeCount())})
		}
	}
	return c
}

// TestApplicationsAcrossReplicas: the same simulated application traffic
// (signed, in batches) is posted to one exporter, and spread over two
// replicas sharing a real redis-server, request by request in turn, so
// that the two ends of most connections and channels reach different
// replicas. Summed over instances, the replicas give exactly what the one
// exporter gives: every counter, every histogram's count, sum and buckets,
// and the live levels; and both give what the simulator reports. A retry
// sent to the other replica is a duplicate there.
func TestApplicationsAcrossReplicas(t *testing.T) {
	ids := []string{"app-alpha", "app-beta", "app-gamma"}
	secretsFile := filepath.Join(t.TempDir(), "secrets.yml")
	secrets := map[string]string{"app-alpha": "alpha-7d2c", "app-beta": "beta-41f9", "app-gamma": "gamma-c03e"}
	writeSecrets(t, secretsFile, "app-alpha: alpha-7d2c\napp-beta: beta-41f9\napp-gamma: gamma-c03e\n")
	flags := []string{"--webhook.application-secrets-file=" + secretsFile}
	redis := testenv.StartRedis(t)
	single := startExporter(t, flags...)
	a, b := startReplica(t, redis.URL(), flags...), startReplica(t, redis.URL(), flags...)
	events := recordApplications(8000, ids)
	run := func(targets ...string) *simulate.Report {
		rep := simulate.Run(t.Context(), &replay{events: events}, simulate.LoadConfig{Targets: targets, Concurrency: 3, Count: len(events),
			Batch: 10, Secrets: secrets})
		if rep.Acked() != len(events) || rep.ByStatus[http.StatusNoContent] != len(events) {
			var out strings.Builder
			rep.Write(&out)
			t.Fatalf("not all acknowledged as applied:\n%s", out.String())
		}
		return rep
	}
	rep := run(single.url("/webhook"))
	run(a.url("/webhook"), b.url("/webhook"))

	one, pair := combine(scrape(t, single)), combine(scrape(t, a), scrape(t, b))
	for _, name := range applicationFamilies {
		if got, want := fmt.Sprint(pair[name].GetMetric()), fmt.Sprint(one[name].GetMetric()); got != want {
			t.Errorf("%s: the replicas summed differ from one exporter:\nreplicas %s\none      %s", name, got, want)
		}
	}
	var report strings.Builder
	rep.Applications.Write(&report)
	for app, s := range parseSimulatedApps(t, report.String()) {
		t.Run(app+" on one exporter", func(t *testing.T) { compareApp(t, one, app, s) })
		t.Run(app+" on two replicas", func(t *testing.T) { compareApp(t, pair, app, s) })
	}
	for _, p := range []*process{a, b} {
		if n := sumByLabel(scrape(t, p)["liveswitch_application_events_total"], "event")["connection.connected"]; n == 0 {
			t.Fatalf("a replica took no connection.connected: the traffic was not spread")
		}
	}

	// LiveSwitch retries a delivery whose answer it did not get; a load
	// balancer may send the retry to the other replica.
	body := events[len(events)-1].Body
	req, _ := http.NewRequest(http.MethodPost, b.url("/webhook"), bytes.NewReader(body))
	req.Header.Set(appsig.Header, appsig.Sign(body, secrets[appOf(t, body)]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || string(answer) != "duplicate=1\n" {
		t.Fatalf("a retry to the other replica: %d %q, want 202 duplicate=1", resp.StatusCode, answer)
	}
}

// appOf is the application an event's body names.
func appOf(t *testing.T, body []byte) string {
	t.Helper()
	for app := range map[string]bool{"app-alpha": true, "app-beta": true, "app-gamma": true} {
		if strings.Contains(string(body), `"applicationId":"`+app+`"`) {
			return app
		}
	}
	t.Fatalf("no application in %s", body)
	return ""
}
