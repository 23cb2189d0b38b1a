package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The endpoints, as exported in the endpoint label.
const (
	endpointMediaServers = "mediaservers"
	endpointApplications = "applications"
	endpointApplication  = "application"
)

// Why an item of an answer was skipped, as exported in the reason label of
// liveswitch_api_invalid_items_total: a bounded set, whatever the answers.
const (
	reasonNotObject    = "not_an_object"
	reasonWrongType    = "wrong_type"
	reasonMissingID    = "missing_id"
	reasonInvalidValue = "invalid_value"
	reasonDuplicateID  = "duplicate_id"
	reasonHoldsKey     = "holds_api_key"
	reasonOtherID      = "other_application"
	// reasonUsedCapacity drops a media server's usedCapacity alone: the
	// server is kept.
	reasonUsedCapacity = "used_capacity_out_of_range"
)

// itemReasons are the reasons each endpoint's items may be skipped for;
// their series exist from the start, at 0.
var itemReasons = map[string][]string{
	endpointMediaServers: {reasonNotObject, reasonWrongType, reasonMissingID, reasonInvalidValue, reasonDuplicateID, reasonHoldsKey, reasonUsedCapacity},
	endpointApplications: {reasonWrongType, reasonMissingID, reasonInvalidValue, reasonDuplicateID, reasonHoldsKey},
	endpointApplication:  {reasonWrongType, reasonInvalidValue, reasonOtherID},
}

// metrics count this exporter's own requests to the API and what it
// skipped of their answers: with replicas only the one holding the claim
// polls, so they are per replica, as the webhook request counter is.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	invalid  *prometheus.CounterVec
	unread   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_api_requests_total",
			Help: "Requests this exporter made to the Gateway's REST API, by endpoint and HTTP status (timeout or error: no answer).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_api_request_duration_seconds",
			Help:    "Time requests to the Gateway's REST API took, body included, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_api_invalid_items_total",
			Help: "Items of the Gateway's REST API answers that this exporter's successful polls skipped, by endpoint and reason (used_capacity_out_of_range: the media server was kept without its capacity).",
		}, []string{"endpoint", "reason"}),
		unread: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveswitch_api_applications_unread",
			Help: "Applications the Gateway's REST API listed at this exporter's last successful poll beyond the first 1000, which one poll reads.",
		}),
	}
	for _, e := range []string{endpointMediaServers, endpointApplications, endpointApplication} {
		m.requests.WithLabelValues(e, "200")
		m.duration.WithLabelValues(e)
		for _, r := range itemReasons[e] {
			m.invalid.WithLabelValues(e, r)
		}
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.invalid, m.unread} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(endpoint, code string, took time.Duration) {
	m.requests.WithLabelValues(endpoint, code).Inc()
	m.duration.WithLabelValues(endpoint).Observe(took.Seconds())
}
