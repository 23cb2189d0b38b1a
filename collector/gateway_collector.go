package collector

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// CollectorOption configures a Collector.
type CollectorOption func(*Collector)

// WithGatewayAPI exports the series that come from the Gateway's REST API.
// Without it (the API is off) none of them is exported, whatever a store
// holds from an earlier run. now is the clock by which liveswitch_api_up
// judges the last successful poll recent; nil is time.Now.
func WithGatewayAPI(now func() time.Time) CollectorOption {
	if now == nil {
		now = time.Now
	}
	return func(c *Collector) { c.gateway = newGatewayDescs(now) }
}

// appCounts are the per-application series and where each comes from.
var appCounts = []struct {
	name, help string
	get        func(*fleet.ApplicationFacts) *int64
}{
	{"channels", "Channels of the application, as the Gateway's REST API counts them.", func(a *fleet.ApplicationFacts) *int64 { return a.Channels }},
	{"clients", "Clients of the application, as the Gateway's REST API counts them.", func(a *fleet.ApplicationFacts) *int64 { return a.Clients }},
	{"connections", "Connections of the application, as the Gateway's REST API counts them.", func(a *fleet.ApplicationFacts) *int64 { return a.Connections }},
	{"users", "Users of the application, as the Gateway's REST API counts them.", func(a *fleet.ApplicationFacts) *int64 { return a.Users }},
	{"devices", "Devices of the application, as the Gateway's REST API counts them.", func(a *fleet.ApplicationFacts) *int64 { return a.Devices }},
}

// mediaServerGauges are the per-media-server series from the API and where
// each comes from; a fact the API did not give has no series.
var mediaServerGauges = []struct {
	name, help string
	get        func(*fleet.MediaServerFacts) (float64, bool)
}{
	{"used_capacity_ratio", "Used capacity of the media server as the Gateway reports it: a fraction where 1 is full (may pass 1 for a while).",
		func(m *fleet.MediaServerFacts) (float64, bool) { return deref(m.UsedCapacity) }},
	{"available", "1 when the Gateway reports the media server available for new sessions.", boolFact(func(m *fleet.MediaServerFacts) *bool { return m.Available })},
	{"active", "1 when the Gateway reports the media server active.", boolFact(func(m *fleet.MediaServerFacts) *bool { return m.Active })},
	{"draining", "1 when the Gateway reports the media server draining (taking no new sessions).", boolFact(func(m *fleet.MediaServerFacts) *bool { return m.Draining })},
	{"over_capacity", "1 when the Gateway reports the media server over capacity.", boolFact(func(m *fleet.MediaServerFacts) *bool { return m.OverCapacity })},
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

func boolFact(at func(*fleet.MediaServerFacts) *bool) func(*fleet.MediaServerFacts) (float64, bool) {
	return func(m *fleet.MediaServerFacts) (float64, bool) {
		if b := at(m); b != nil {
			return boolFloat(*b), true
		}
		return 0, false
	}
}

// gatewayDescs are the descriptions of the series from the Gateway's API.
type gatewayDescs struct {
	now                     func() time.Time
	mediaServer             []*prometheus.Desc // as mediaServerGauges
	apps                    []*prometheus.Desc // as appCounts
	listed                  *prometheus.Desc
	up, lastSuccess, change *prometheus.Desc
}

func newGatewayDescs(now func() time.Time) *gatewayDescs {
	g := &gatewayDescs{
		now: now,
		listed: serverDesc("gateway_listed",
			"1 when the last successful poll of the Gateway's REST API listed the media server, 0 when it did not."),
		up: prometheus.NewDesc("liveswitch_api_up",
			"1 when a poll of the Gateway's REST API succeeded within the last three intervals and none of this exporter's failed since.", nil, nil),
		lastSuccess: prometheus.NewDesc("liveswitch_api_last_success_timestamp_seconds",
			"Exporter clock time at which the last successful poll of the Gateway's REST API began (0: none yet).", nil, nil),
		change: prometheus.NewDesc("liveswitch_exporter_reconciled_total",
			"Media servers changed because the Gateway's REST API listed them: created (unknown before) or registered (a missed registered webhook).",
			[]string{"change"}, nil),
	}
	for _, m := range mediaServerGauges {
		g.mediaServer = append(g.mediaServer, prometheus.NewDesc(prometheus.BuildFQName(namespace, "mediaserver", m.name), m.help, serverLabels, nil))
	}
	for _, a := range appCounts {
		g.apps = append(g.apps, prometheus.NewDesc(prometheus.BuildFQName(namespace, "application", a.name), a.help, []string{"application_id"}, nil))
	}
	return g
}

func (g *gatewayDescs) describe(ch chan<- *prometheus.Desc) {
	for _, d := range append(append([]*prometheus.Desc{g.listed, g.up, g.lastSuccess, g.change}, g.mediaServer...), g.apps...) {
		ch <- d
	}
}

// collect emits the API's series from the scrape's snapshot. Before the
// first successful poll only the API's own series are there.
func (g *gatewayDescs) collect(ch chan<- prometheus.Metric, snap *fleet.Snapshot) {
	v := snap.Gateway
	var view fleet.GatewayView
	if v != nil {
		view = *v
	}
	ch <- prometheus.MustNewConstMetric(g.up, prometheus.GaugeValue, boolFloat(fleet.APIUp(v, snap.APIFailedMs, g.now())))
	ch <- prometheus.MustNewConstMetric(g.lastSuccess, prometheus.GaugeValue, float64(view.PollMs)/1000)
	for c := range fleet.NumChanges {
		ch <- prometheus.MustNewConstMetric(g.change, prometheus.CounterValue, float64(view.Reconciled[c]), fleet.Change(c).String())
	}
	if v == nil {
		return
	}
	g.collectListed(ch, snap)
	g.collectMediaServers(ch, snap)
	for i := range v.Applications {
		a := &v.Applications[i]
		for j, c := range appCounts {
			if n := c.get(a); n != nil {
				ch <- prometheus.MustNewConstMetric(g.apps[j], prometheus.GaugeValue, float64(*n), a.ID)
			}
		}
	}
}

// collectListed tells, for every media server of the fleet, whether the
// Gateway listed it.
func (g *gatewayDescs) collectListed(ch chan<- prometheus.Metric, snap *fleet.Snapshot) {
	for i := range snap.Servers {
		s := &snap.Servers[i]
		if s.Origin != fleet.MediaServerOrigin {
			continue
		}
		_, listed := snap.Gateway.Listed(s.Info.ID)
		ch <- prometheus.MustNewConstMetric(g.listed, prometheus.GaugeValue, boolFloat(listed),
			s.Origin, s.Info.ID, s.Info.Region, s.Info.DeploymentID)
	}
}

// collectMediaServers emits what the API said of each listed media server,
// labelled as the fleet labels it (so that the series join the others), or
// as the API does when the fleet does not track it.
func (g *gatewayDescs) collectMediaServers(ch chan<- prometheus.Metric, snap *fleet.Snapshot) {
	for i := range snap.Gateway.MediaServers {
		m := &snap.Gateway.MediaServers[i]
		region, deployment := m.Region, m.DeploymentID
		if s := findServer(snap.Servers, fleet.Key{Origin: fleet.MediaServerOrigin, ID: m.ID}); s != nil {
			region, deployment = s.Info.Region, s.Info.DeploymentID
		}
		for j, gauge := range mediaServerGauges {
			if v, ok := gauge.get(m); ok {
				ch <- prometheus.MustNewConstMetric(g.mediaServer[j], prometheus.GaugeValue, v,
					fleet.MediaServerOrigin, m.ID, region, deployment)
			}
		}
	}
}

// findServer finds k in servers sorted as Snapshot sorts them.
func findServer(servers []fleet.Server, k fleet.Key) *fleet.Server {
	i, ok := slices.BinarySearchFunc(servers, k, func(s fleet.Server, k fleet.Key) int {
		return cmp.Or(cmp.Compare(s.Origin, k.Origin), cmp.Compare(s.Info.ID, k.ID))
	})
	if !ok {
		return nil
	}
	return &servers[i]
}
