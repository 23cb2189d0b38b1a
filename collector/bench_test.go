package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

// benchFleet builds, through a writer, a fleet of n servers spread over
// origins, deployments and regions, as a real one is.
func benchFleet(b testing.TB, n int) *fleet.Fleet {
	b.Helper()
	f := fleet.New()
	w := writer.New(f, nil, writer.Options{Decode: event.DefaultDecodeOptions, Now: func() time.Time { return fixture.Now }})
	defer w.Close()
	fixture.Ingest(b, w, fixture.ServerBodies(n)...)
	return f
}

// BenchmarkScrape measures serving /metrics for fleets of 100, 1,000 and
// 10,000 servers through promhttp, against the bound of a plain registry
// serving the same series as ConstMetrics built beforehand.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		f := benchFleet(b, n)
		exporter := prometheus.NewRegistry()
		exporter.MustRegister(NewCollector(f))
		bound := prometheus.NewRegistry()
		bound.MustRegister(prebuilt(b, NewCollector(f)))
		for _, tc := range []struct {
			name string
			reg  *prometheus.Registry
			gzip bool
		}{
			{"exporter", exporter, false},
			{"bound=plain-registry", bound, false},
			{"exporter/gzip", exporter, true},
			{"bound=plain-registry/gzip", bound, true},
		} {
			b.Run(fmt.Sprintf("servers=%d/%s", n, tc.name), func(b *testing.B) {
				h := promhttp.HandlerFor(tc.reg, promhttp.HandlerOpts{})
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if tc.gzip {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatal(rec.Code)
					}
					b.SetBytes(int64(rec.Body.Len()))
				}
			})
		}
	}
}

// constCollector replays metrics collected once: the cheapest a collector
// of the same series can be.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

func prebuilt(b testing.TB, c prometheus.Collector) constCollector {
	b.Helper()
	ch := make(chan prometheus.Metric, 1024)
	var out constCollector
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		out = append(out, m)
	}
	return out
}
