package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

const namespace = "liveswitch"

// serverLabels identify one server's series: the id alone is unique per
// origin only, and region and deployment are what dashboards slice by.
var serverLabels = []string{"origin", "id", "region", "deployment_id"}

var groupLabels = []string{"origin", "region", "deployment_id"}

func serverDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "server", name), help,
		append(append([]string{}, serverLabels...), extra...), nil)
}

// Collector exposes a fleet to Prometheus. Every scrape builds all series
// from one snapshot, so values never mix two moments of the fleet.
type Collector struct {
	fleet *fleet.Fleet

	up, state, cores, info, lastEvent, stateChange, events, flaps *prometheus.Desc
	servers, groupCores                                           *prometheus.Desc
	outcomes, lastReceived, storageErrors, storageUp              *prometheus.Desc
	tracked, limit, forgotten                                     *prometheus.Desc
	dataLoss                                                      *prometheus.Desc
	// gateway describes the series from the Gateway's REST API; nil when
	// the API is off.
	gateway *gatewayDescs
	// also counts the events received outside the fleet; nil for none.
	also *fleet.OutcomeCounter
}

// NewCollector returns a collector of fleet's metrics.
func NewCollector(f *fleet.Fleet, opts ...CollectorOption) *Collector {
	c := &Collector{
		fleet: f,
		up:    serverDesc("up", "1 unless the server's last lifecycle event says it stopped."),
		state: serverDesc("state", "Lifecycle state of the server: 1 for the current state, 0 for the others.", "state"),
		cores: serverDesc("cores", "CPU cores of the server, as reported in its coreCount."),
		info: serverDesc("info", "Descriptive facts about the server; always 1.",
			"machine_name", "version", "operating_system", "operating_system_version", "architecture"),
		lastEvent:   serverDesc("last_event_timestamp_seconds", "Event time of the last event applied to the server, heartbeats included."),
		stateChange: serverDesc("state_change_timestamp_seconds", "Event time at which the server entered its current state."),
		events:      serverDesc("events_total", "Lifecycle events applied to the server, by kind.", "event"),
		flaps:       serverDesc("registration_flaps_total", "Re-registrations of the server after an unregistration without a stop in between."),
		servers: prometheus.NewDesc("liveswitch_servers", "Number of servers in each state.",
			append(append([]string{}, groupLabels...), "state"), nil),
		groupCores: prometheus.NewDesc("liveswitch_cores", "Sum of CPU cores over servers that are up.", groupLabels, nil),
		outcomes: prometheus.NewDesc("liveswitch_exporter_events_total",
			"Events received on the webhook, by what the exporter did with them.", []string{"outcome"}, nil),
		lastReceived: prometheus.NewDesc("liveswitch_exporter_last_event_received_timestamp_seconds",
			"Exporter clock time at which the last webhook event was received.", nil, nil),
		storageErrors: prometheus.NewDesc("liveswitch_exporter_storage_errors_total",
			"Commits of fleet changes that the store refused; the webhooks concerned were answered 503.", nil, nil),
		storageUp: prometheus.NewDesc("liveswitch_exporter_storage_up",
			"1 when the store accepts fleet changes: the last commit succeeded, or a replica follows its shared store.", nil, nil),
		tracked: prometheus.NewDesc("liveswitch_exporter_servers_tracked",
			"Servers the exporter tracks now.", nil, nil),
		limit: prometheus.NewDesc("liveswitch_exporter_servers_limit",
			"Most servers the exporter tracks (--server.max); 0 means no limit.", nil, nil),
		forgotten: prometheus.NewDesc("liveswitch_exporter_servers_forgotten_total",
			"Servers forgotten, with all their series, by reason: retention after stop, stale, evicted to make room, deleted through the API.",
			[]string{"reason"}, nil),
		dataLoss: prometheus.NewDesc("liveswitch_exporter_storage_data_loss_total",
			"Losses of the replicas' shared log (keys deleted or evicted, a failover that lost writes) that a replica rebuilt it from, by what was lost (always 0 for the embedded store).",
			[]string{"cause"}, nil),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CountAlso adds the counts of also to liveswitch_exporter_events_total
// and to the last-received time: the events the exporter handles outside
// the fleet (application events). It returns c.
func (c *Collector) CountAlso(also *fleet.OutcomeCounter) *Collector {
	c.also = also
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.cores, c.info, c.lastEvent, c.stateChange,
		c.events, c.flaps, c.servers, c.groupCores, c.outcomes, c.lastReceived, c.storageErrors, c.storageUp,
		c.tracked, c.limit, c.forgotten, c.dataLoss} {
		ch <- d
	}
	if c.gateway != nil {
		c.gateway.describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.fleet.Snapshot()
	if c.also != nil {
		extra := c.also.Stats()
		snap.Stats.Add(&extra)
	}
	groups := make(map[groupKey]*groupTotals)
	buf := make([]string, 0, len(serverLabels)+5)
	for i := range snap.Servers {
		s := &snap.Servers[i]
		c.collectServer(ch, s, buf)
		g := groupKey{s.Origin, s.Info.Region, s.Info.DeploymentID}
		t := groups[g]
		if t == nil {
			t = &groupTotals{}
			groups[g] = t
		}
		t.add(s)
	}
	for g, t := range groups {
		for st := range fleet.NumStates {
			ch <- prometheus.MustNewConstMetric(c.servers, prometheus.GaugeValue, float64(t.byState[st]),
				g.origin, g.region, g.deployment, fleet.State(st).String())
		}
		ch <- prometheus.MustNewConstMetric(c.groupCores, prometheus.GaugeValue, float64(t.cores),
			g.origin, g.region, g.deployment)
	}
	for o := range fleet.NumOutcomes {
		ch <- prometheus.MustNewConstMetric(c.outcomes, prometheus.CounterValue,
			float64(snap.Stats.Outcomes[o]), fleet.Outcome(o).String())
	}
	ch <- prometheus.MustNewConstMetric(c.lastReceived, prometheus.GaugeValue, float64(snap.Stats.LastReceivedMs)/1000)
	ch <- prometheus.MustNewConstMetric(c.storageErrors, prometheus.CounterValue, float64(snap.Stats.StorageErrors))
	ch <- prometheus.MustNewConstMetric(c.storageUp, prometheus.GaugeValue, boolFloat(snap.StorageUp))
	ch <- prometheus.MustNewConstMetric(c.tracked, prometheus.GaugeValue, float64(len(snap.Servers)))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(snap.Stats.Limit))
	for r := range fleet.NumForgetReasons {
		ch <- prometheus.MustNewConstMetric(c.forgotten, prometheus.CounterValue,
			float64(snap.Stats.Forgotten[r]), fleet.ForgetReason(r).String())
	}
	for l := storage.LossNone + 1; l < storage.NumLosses; l++ {
		ch <- prometheus.MustNewConstMetric(c.dataLoss, prometheus.CounterValue, float64(snap.Stats.DataLoss[l]), l.String())
	}
	if c.gateway != nil {
		c.gateway.collect(ch, &snap)
	}
}

func (c *Collector) collectServer(ch chan<- prometheus.Metric, s *fleet.Server, buf []string) {
	// buf holds the server's labels followed by a metric's own; NewConstMetric
	// copies the values, so one buffer serves every metric of the server.
	labels := append(buf[:0], s.Origin, s.Info.ID, s.Info.Region, s.Info.DeploymentID)
	n := len(labels)
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, append(labels[:n], extra...)...)
	}
	emit(c.up, prometheus.GaugeValue, boolFloat(s.Up()))
	for st := range fleet.NumStates {
		emit(c.state, prometheus.GaugeValue, boolFloat(s.State == fleet.State(st)), fleet.State(st).String())
	}
	emit(c.cores, prometheus.GaugeValue, float64(s.Info.CoreCount))
	emit(c.info, prometheus.GaugeValue, 1, s.Info.MachineName, s.Info.Version, s.Info.OperatingSystem,
		s.Info.OperatingSystemVersion, s.Info.Architecture)
	emit(c.lastEvent, prometheus.GaugeValue, float64(s.LastEventMs)/1000)
	emit(c.stateChange, prometheus.GaugeValue, float64(s.SinceMs())/1000)
	for a := range event.NumActions {
		emit(c.events, prometheus.CounterValue, float64(s.Events[a]), event.Action(a).String())
	}
	emit(c.flaps, prometheus.CounterValue, float64(s.Flaps))
}

type groupKey struct{ origin, region, deployment string }

type groupTotals struct {
	byState [fleet.NumStates]int
	cores   int
}

func (t *groupTotals) add(s *fleet.Server) {
	t.byState[s.State]++
	if s.Up() {
		t.cores += s.Info.CoreCount
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
