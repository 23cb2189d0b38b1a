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

// requestMetrics count this exporter's own requests to the API: with
// replicas only the one holding the claim polls, so they are per replica,
// as the webhook request counter is.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) (*requestMetrics, error) {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_api_requests_total",
			Help: "Requests this exporter made to the Gateway's REST API, by endpoint and HTTP status (timeout or error: no answer).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveswitch_api_request_duration_seconds",
			Help:    "Time requests to the Gateway's REST API took, body included, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
	}
	for _, e := range []string{endpointMediaServers, endpointApplications, endpointApplication} {
		m.requests.WithLabelValues(e, "200")
		m.duration.WithLabelValues(e)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *requestMetrics) observe(endpoint, code string, took time.Duration) {
	m.requests.WithLabelValues(endpoint, code).Inc()
	m.duration.WithLabelValues(endpoint).Observe(took.Seconds())
}
