package applications

import (
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"github.com/prometheus/client_golang/prometheus"
)

// SetupBuckets are the upper bounds, in seconds, of the connection setup
// histogram: fine around the usual one to three seconds of ICE and DTLS,
// coarse up to the half minute after which a connection has failed.
var SetupBuckets = []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30}

// ChannelDurationBuckets are the upper bounds, in seconds, of the channel
// (conference) duration histogram: from a few seconds (a call that did not
// happen) to the hours of a webinar.
var ChannelDurationBuckets = []float64{5, 15, 30, 60, 120, 300, 600, 900, 1800, 2700, 3600, 5400, 7200, 14400, 28800}

// ConnectionDurationBuckets are the upper bounds, in seconds, of the
// histogram of the time connections stay connected.
var ConnectionDurationBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}

// ChannelSizeBuckets are the upper bounds of the histogram of a channel's
// peak number of clients: one-to-one calls, small meetings, large ones,
// webinars.
var ChannelSizeBuckets = []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 250, 500, 1000}

// perReplica ends the help of every counter of this package: with
// replicas, each counts what it received, and queries sum them.
const perReplica = " Counted by each replica for the webhooks it received: sum over instances."

// shared ends the help of the gauges read from the State: with replicas,
// each shows the shared value, and queries take the max.
const shared = " With replicas, every replica shows the shared state: take the max over instances."

// metrics are the series of the application webhooks.
type metrics struct {
	events, failures, causes, phases *prometheus.CounterVec
	setup, channelDuration, size     *prometheus.HistogramVec
	connectionDuration               *prometheus.HistogramVec

	activeChannels, activeClients, activeConnections, largest *prometheus.Desc

	refused      *prometheus.CounterVec
	forgotten    prometheus.Counter
	unremembered prometheus.Counter
	stateErrors  prometheus.Counter

	dropped, entries, entriesLimit, remembered, rememberedLimit, tracked, limit *prometheus.Desc
}

func newMetrics() *metrics {
	app := []string{"application_id"}
	gauge := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help+shared, app, nil)
	}
	return &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_events_total",
			Help: "Application webhook events (channel, client, connection) by application and documented event type, each counted once." + perReplica,
		}, []string{"application_id", "event"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_connection_failures_total",
			Help: "connection.failed events by application and connection type (sfu, mcu, peer, other, unknown)." + perReplica,
		}, []string{"application_id", "connection_type"}),
		causes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_connection_failures_by_cause_total",
			Help: "connection.failed events by application and the class of their error (ice, dtls, media, timeout, other, unknown)." + perReplica,
		}, []string{"application_id", "cause"}),
		phases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_application_connection_failures_by_phase_total",
			Help: "connection.failed events by application and how far the connection had come: setup (never connected), established (failed after connecting), unknown (its start was not seen)." + perReplica,
		}, []string{"application_id", "phase"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_application_connection_setup_seconds",
			Help:    "Time from a connection's initializing to its connected, by their event times." + perReplica,
			Buckets: SetupBuckets,
		}, app),
		connectionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_application_connection_duration_seconds",
			Help:    "Time from a connection's connected to its closed or failed, by their event times, by connection type." + perReplica,
			Buckets: ConnectionDurationBuckets,
		}, []string{"application_id", "connection_type"}),
		channelDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_application_channel_duration_seconds",
			Help:    "Time from a channel's activated to its deactivated (a conference's duration), by their event times." + perReplica,
			Buckets: ChannelDurationBuckets,
		}, app),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_application_channel_peak_clients",
			Help:    "Most clients a channel had at once (a conference's size), from channel.client.joined and left, observed when it is deactivated." + perReplica,
			Buckets: ChannelSizeBuckets,
		}, app),
		activeChannels:    gauge("liveswitch_application_active_channels", "Channels activated and not deactivated, from the application's webhooks."),
		activeClients:     gauge("liveswitch_application_active_clients", "Clients registered and not unregistered, from the application's webhooks."),
		activeConnections: gauge("liveswitch_application_active_connections", "Connections initializing or connected and not closed or failed, from the application's webhooks."),
		largest:           gauge("liveswitch_application_largest_channel_clients", "Clients in the application's largest active channel now."),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_exporter_application_events_refused_total",
			Help: "Application events answered 202 and not counted, by reason: max_applications (--application.max), too_old (--application.max-event-age), too_far_ahead (--webhook.max-future-skew)." + perReplica,
		}, []string{"reason"}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveswitch_exporter_applications_forgotten_total",
			Help: "Applications that gave up their slot and their series after --application.idle-after without an event, not listed by the Gateway." + perReplica,
		}),
		unremembered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveswitch_exporter_application_events_unremembered_total",
			Help: "Application events counted while the memory of their minute was full (--application.max-remembered-events): a replay of them would count again." + perReplica,
		}),
		stateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveswitch_exporter_application_state_errors_total",
			Help: "Application webhooks answered 503 because the shared application state (Redis) failed; nothing of them was counted." + perReplica,
		}),
		dropped: prometheus.NewDesc("liveswitch_exporter_application_entries_dropped_total",
			"Connections, channels and clients dropped before their end, by table and reason: expired (past their time to live) or evicted (the table was full; the one closest to expiring goes)."+perReplica,
			[]string{"table", "reason"}, nil),
		entries: prometheus.NewDesc("liveswitch_exporter_application_entries",
			"Connections, channels and clients held between their start and their end, by table."+shared, []string{"table"}, nil),
		entriesLimit: prometheus.NewDesc("liveswitch_exporter_application_entries_limit",
			"Most entries held per table (--application.max-pending-connections, -channels, -clients).", []string{"table"}, nil),
		remembered: prometheus.NewDesc("liveswitch_exporter_application_events_remembered",
			"Application events remembered so that a retry or a replay counts once."+shared, nil, nil),
		rememberedLimit: prometheus.NewDesc("liveswitch_exporter_application_events_remembered_limit",
			"Most application events remembered (--application.max-remembered-events); 0 means no limit.", nil, nil),
		tracked: prometheus.NewDesc("liveswitch_exporter_applications_tracked",
			"Applications this replica counts events of.", nil, nil),
		limit: prometheus.NewDesc("liveswitch_exporter_applications_limit",
			"Most applications counted (--application.max); 0 means no limit.", nil, nil),
	}
}

// vectors are the collectors whose series are an application's, deleted
// with it.
func (m *metrics) vectors() []*prometheus.MetricVec {
	return []*prometheus.MetricVec{m.events.MetricVec, m.failures.MetricVec, m.causes.MetricVec, m.phases.MetricVec,
		m.setup.MetricVec, m.connectionDuration.MetricVec, m.channelDuration.MetricVec, m.size.MetricVec}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.events, m.failures, m.causes, m.phases, m.setup, m.connectionDuration,
		m.channelDuration, m.size, m.refused, m.forgotten, m.unremembered, m.stateErrors}
}

func (m *metrics) descs() []*prometheus.Desc {
	return []*prometheus.Desc{m.activeChannels, m.activeClients, m.activeConnections, m.largest,
		m.dropped, m.entries, m.entriesLimit, m.remembered, m.rememberedLimit, m.tracked, m.limit}
}

func (m *metrics) describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	for _, d := range m.descs() {
		ch <- d
	}
}

// forget deletes every series of app.
func (m *metrics) forget(app string) {
	for _, v := range m.vectors() {
		v.DeletePartialMatch(prometheus.Labels{"application_id": app})
	}
}

// gauges are what a scrape reads of the State and of the tracker.
type gauges struct {
	apps   []string
	levels []callstate.Levels // nil when the callstate.State did not answer
	sizes  *callstate.Sizes   // idem
	limits [callstate.NumTables]int
	// dropped are this replica's drops since its start.
	dropped                                   callstate.Drops
	rememberedLimit, tracked, maxApplications int
}

func (m *metrics) collect(ch chan<- prometheus.Metric, g *gauges) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	gaugeOf := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for i, app := range g.apps {
		if g.levels == nil {
			break
		}
		lv := g.levels[i]
		gaugeOf(m.activeChannels, lv.Channels, app)
		gaugeOf(m.activeClients, lv.Clients, app)
		gaugeOf(m.activeConnections, lv.Connections, app)
		gaugeOf(m.largest, lv.LargestChannel, app)
	}
	for t := range callstate.NumTables {
		for r := range callstate.NumDropReasons {
			ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(g.dropped[t][r]), t.String(), r.String())
		}
		if g.sizes != nil {
			gaugeOf(m.entries, g.sizes.Entries[t], t.String())
		}
		gaugeOf(m.entriesLimit, int64(g.limits[t]), t.String())
	}
	if g.sizes != nil {
		gaugeOf(m.remembered, g.sizes.Remembered)
	}
	gaugeOf(m.rememberedLimit, int64(g.rememberedLimit))
	gaugeOf(m.tracked, int64(g.tracked))
	gaugeOf(m.limit, int64(g.maxApplications))
}
