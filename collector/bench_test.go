package collector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// benchFleet builds a fleet of n servers spread over origins, deployments and
// regions, as a real one is.
func benchFleet(b testing.TB, n int) (*Fleet, *Writer) {
	b.Helper()
	fleet := NewFleet()
	w := NewWriter(fleet, nil, WriterOptions{Decode: event.DefaultDecodeOptions, Now: func() time.Time { return fixture.Now }})
	origins := []string{"mediaserver", "mediaserver", "mediaserver", "gateway", "sipconnector", "recordingmuxer"}
	actions := []string{"registered", "registered", "running", "unregistered", "stopped"}
	for i := range n {
		origin := origins[i%len(origins)]
		action := actions[i%len(actions)]
		if action == "running" {
			action = "started"
		}
		body := fixture.EventJSON(fixture.Now.UnixMilli()-int64(n-i), origin, action, fmt.Sprintf(
			`{"id":"%08x-4b3e-b2a5-42761849ae19","version":"1.24.2.0","machineName":"%s-%05d","coreCount":16,`+
				`"operatingSystem":"linux","operatingSystemVersion":"6.1.0-28-amd64","architecture":"x64",`+
				`"deploymentId":"deployment-%d","region":"region-%d"}`, i, origin, i, i%3, i%7))
		if _, err := w.Ingest(context.Background(), []byte(body)); err != nil {
			b.Fatal(err)
		}
	}
	return fleet, w
}

// fillHistories applies HistoryLen more lifecycle events to each of the n
// servers of benchFleet, in batches.
func fillHistories(b *testing.B, w *Writer, n int) {
	b.Helper()
	actions := []string{"started", "registered", "unregistered", "registered", "stopped"}
	origins := []string{"mediaserver", "mediaserver", "mediaserver", "gateway", "sipconnector", "recordingmuxer"}
	for i := range n {
		var batch []string
		for k := range HistoryLen {
			batch = append(batch, fixture.EventJSON(fixture.Now.UnixMilli()+int64(k+1), origins[i%len(origins)], actions[k%len(actions)],
				fmt.Sprintf(`{"id":"%08x-4b3e-b2a5-42761849ae19"}`, i)))
		}
		if _, err := w.Ingest(context.Background(), []byte("["+strings.Join(batch, ",")+"]")); err != nil {
			b.Fatal(err)
		}
	}
}

// realisticEvent is a server event as LiveSwitch sends them.

// BenchmarkDecode measures decoding one realistic event.

// BenchmarkApply measures applying one decoded event to a fleet of 10,000
// servers: the rule, the staging and the publication, without the store.
func BenchmarkApply(b *testing.B) {
	fleet, w := benchFleet(b, 10000)
	defer w.Close()
	snap := fleet.Snapshot()
	events := make([]event.Event, len(snap.Servers))
	for i, s := range snap.Servers {
		events[i] = event.Event{Kind: event.KindLifecycle, Origin: s.Origin, Server: s.Info}
	}
	b.ReportAllocs()
	var st Staging // reused group after group, as the writer's folder does
	i := 0
	for b.Loop() {
		ev := &events[i%len(events)]
		ev.Timestamp = fixture.Now.UnixMilli() + int64(i)
		ev.Action = event.Action(i % int(event.NumActions))
		st.Reset(fleet, Limits{MaxServers: 20000})
		st.Apply(ev)
		fleet.Publish(&st)
		i++
	}
}

// BenchmarkScrape measures serving /metrics for fleets of 100, 1,000 and
// 10,000 servers through promhttp, against the bound of a plain registry
// serving the same series as ConstMetrics built beforehand.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		fleet, w := benchFleet(b, n)
		w.Close()
		exporter := prometheus.NewRegistry()
		exporter.MustRegister(NewCollector(fleet))
		bound := prometheus.NewRegistry()
		bound.MustRegister(prebuilt(b, NewCollector(fleet)))
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

// BenchmarkFleetMemory reports the heap a tracked server costs, with a fleet
// of 10,000 servers built through the webhook path.
// With history=20 every server also holds a full history of lifecycle
// events, the most a long-lived server costs.
func BenchmarkFleetMemory(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%d", boolInt(full)*(HistoryLen-1)+1), func(b *testing.B) { fleetMemory(b, full) })
	}
}

func fleetMemory(b *testing.B, fullHistory bool) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fleet, w := benchFleet(b, 10000)
		if fullHistory {
			fillHistories(b, w, 10000)
		}
		w.Close()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(fleet.Len()), "heap-bytes/server")
		runtime.KeepAlive(fleet)
	}
}

// BenchmarkDecodeManyMembers decodes a hostile 1 MiB event of 100,000
// made-up members: its cost must grow linearly with the body (it was
// quadratic once, 26 s for this body).
