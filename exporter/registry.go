package exporter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
)

// NewRegistry returns the registry /metrics serves: the given collectors
// (the fleet's) plus build info and the standard Go and process metrics.
// NewHandler adds the webhook request counter.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(cs...)
	r.MustRegister(
		versioncollector.NewCollector("liveswitch_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// StartedEmpty is liveswitch_exporter_storage_started_empty: 1 for the life
// of a process that started from an empty store in place of a damaged one
// (--storage.on-damage=start-empty), which an alert pages on; its log says
// so at WARN level too.
func StartedEmpty(started bool) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liveswitch_exporter_storage_started_empty",
		Help: "1 when this exporter started from an empty store because --storage.on-damage=start-empty moved a damaged one aside (this start, or an earlier one since which nothing was stored); 0 otherwise. It stays until the next restart.",
	})
	if started {
		g.Set(1)
	}
	return g
}
