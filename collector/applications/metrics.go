package applications

import "github.com/prometheus/client_golang/prometheus"

// SetupBuckets are the upper bounds, in seconds, of the connection setup
// histogram: fine around the usual one to three seconds of ICE and DTLS,
// coarse up to the half minute after which a connection has failed.
var SetupBuckets = []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30}

// perReplica ends the help of every counter of this package: with
// replicas, each counts what it received, and queries sum them.
const perReplica = " Counted by each replica for the webhooks it received: sum over instances."

// metrics are the series of the application webhooks.
type metrics struct {
	events   *prometheus.CounterVec
	failures *prometheus.CounterVec
	setup    *prometheus.HistogramVec

	dropped, pending, pendingLimit, tracked, limit *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_events_total",
			Help: "Application webhook events (channel, client, connection) by application and documented event type." + perReplica,
		}, []string{"application_id", "event"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_connection_failures_total",
			Help: "connection.failed events by application and connection type (sfu, mcu, peer, other, unknown)." + perReplica,
		}, []string{"application_id", "connection_type"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_application_connection_setup_seconds",
			Help:    "Time from a connection's initializing to its connected, by their event times." + perReplica,
			Buckets: SetupBuckets,
		}, []string{"application_id"}),
		dropped: prometheus.NewDesc("liveswitch_exporter_pending_connections_dropped_total",
			"Connections dropped from the pending table before their connected: expired (5 minutes without it) or evicted (the table was full; the oldest goes)."+perReplica,
			[]string{"reason"}, nil),
		pending: prometheus.NewDesc("liveswitch_exporter_pending_connections",
			"Connections initializing and not yet connected, held to measure their setup time.", nil, nil),
		pendingLimit: prometheus.NewDesc("liveswitch_exporter_pending_connections_limit",
			"Most pending connections held (--application.max-pending-connections).", nil, nil),
		tracked: prometheus.NewDesc("liveswitch_exporter_applications_tracked",
			"Applications this replica counts events of.", nil, nil),
		limit: prometheus.NewDesc("liveswitch_exporter_applications_limit",
			"Most applications counted (--application.max); 0 means no limit.", nil, nil),
	}
}

func (m *metrics) vectors() []prometheus.Collector {
	return []prometheus.Collector{m.events, m.failures, m.setup}
}

func (m *metrics) describe(ch chan<- *prometheus.Desc) {
	for _, v := range m.vectors() {
		v.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.dropped, m.pending, m.pendingLimit, m.tracked, m.limit} {
		ch <- d
	}
}

// gauges are the numbers of the table and of the applications, read
// under the tracker's lock.
type gauges struct {
	dropped                               [numDropReasons]uint64
	pending, pendingLimit, tracked, limit int
}

func (m *metrics) collect(ch chan<- prometheus.Metric, g gauges) {
	for _, v := range m.vectors() {
		v.Collect(ch)
	}
	for r, n := range g.dropped {
		ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(n), DropReason(r).String())
	}
	ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(g.pending))
	ch <- prometheus.MustNewConstMetric(m.pendingLimit, prometheus.GaugeValue, float64(g.pendingLimit))
	ch <- prometheus.MustNewConstMetric(m.tracked, prometheus.GaugeValue, float64(g.tracked))
	ch <- prometheus.MustNewConstMetric(m.limit, prometheus.GaugeValue, float64(g.limit))
}
