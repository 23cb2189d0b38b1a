package exporter

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// Config is what the routes need from the rest of the program.
type Config struct {
	TelemetryPath string
	Ingester      Ingester
	Forgetter     Forgetter
	// Ready reports whether the fleet is restored and writable.
	Ready        func() bool
	MaxBodyBytes int64
	// MaxInFlight caps concurrent webhook requests (0: no cap).
	MaxInFlight int
	// Applications counts the events of application webhooks; nil leaves
	// them to Ingester, which ignores them. When it is also an
	// ApplicationReader (the Tracker is), the status page lists them.
	Applications ApplicationIngester
	// ApplicationSecrets, when not nil, must sign every application
	// webhook (X-ApplicationSignature).
	ApplicationSecrets *appsig.File
	// Gateway is this exporter's poller of the Gateway's REST API, for the
	// status page; nil when the API is off.
	Gateway GatewayPolls
	// Guard protects the webhook and the delete API.
	Guard    WriteGuard
	Registry *prometheus.Registry
	// Fleet is read by the status page and the read API.
	Fleet FleetReader
	// Now is the clock of the status page and the delivery log.
	Now    func() time.Time
	Logger *slog.Logger
}

// WebhookPath is where LiveSwitch is told to post server events.
const WebhookPath = "/webhook"

// Handlers are the exporter's HTTP surfaces.
type Handlers struct {
	// Main serves everything: webhook, metrics, API, probes, status page.
	Main http.Handler
	// Webhook serves only what LiveSwitch and probes need (the webhook, the
	// delete API, /-/healthy and /-/ready), for a listener of its own.
	Webhook http.Handler
}

// NewHandlers builds the exporter's HTTP surfaces and registers the webhook
// request counter in cfg.Registry.
func NewHandlers(cfg Config) (*Handlers, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveswitch_exporter_webhook_requests_total",
		Help: "Webhook requests by HTTP status code of the answer.",
	}, []string{"code"})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liveswitch_exporter_webhook_requests_in_flight",
		Help: "Webhook requests being served now (at most --webhook.max-in-flight).",
	})
	for _, c := range []prometheus.Collector{requests, inFlight} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	apps, err := newApplicationRoute(cfg)
	if err != nil {
		return nil, err
	}
	deliveries := NewDeliveryLog()
	writes := http.NewServeMux()
	writes.Handle(WebhookPath, deliveries.Record(cfg.Now, requests, cfg.Guard.Wrap(
		LimitInFlight(cfg.MaxInFlight, promhttp.InstrumentHandlerInFlight(inFlight,
			WebhookHandler(cfg.Ingester, apps, cfg.Ready, cfg.MaxBodyBytes, cfg.Logger))))))
	writes.Handle("DELETE /api/v1/servers/{origin}/{id}", cfg.Guard.Wrap(DeleteServerHandler(cfg.Forgetter, cfg.Logger)))
	writes.Handle("/-/healthy", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, "Healthy")
	}))
	writes.Handle("/-/ready", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !cfg.Ready() {
			unavailable(w, "Not ready")
			return
		}
		reply(w, http.StatusOK, "Ready")
	}))

	main := http.NewServeMux()
	for _, pattern := range []string{WebhookPath, "DELETE /api/v1/servers/{origin}/{id}", "/-/healthy", "/-/ready"} {
		main.Handle(pattern, writes)
	}
	main.Handle(cfg.TelemetryPath, promhttp.InstrumentMetricHandler(cfg.Registry,
		promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
			EnableOpenMetrics: true,
		})))
	main.Handle("GET /api/v1/servers", ServersHandler(cfg.Fleet))
	main.Handle("GET /api/v1/servers/{origin}/{id}", ServerHandler(cfg.Fleet))
	main.Handle("GET /api/v1/events", EventsHandler(deliveries))
	if cfg.TelemetryPath != "/" {
		appStats, _ := cfg.Applications.(ApplicationReader)
		main.Handle("GET /{$}", StatusPage(StatusPageConfig{
			Name: "LiveSwitch Exporter", Version: versionString(), Fleet: cfg.Fleet, Deliveries: deliveries,
			Gateway: cfg.Gateway, Applications: appStats, Ready: cfg.Ready, Now: cfg.Now, Logger: cfg.Logger,
			Links: []Link{
				{cfg.TelemetryPath, "Metrics"}, {"/api/v1/servers", "Servers (JSON)"}, {"/api/v1/events", "Deliveries (JSON)"},
				{"/-/healthy", "Health"}, {"/-/ready", "Readiness"},
			},
		}))
	}
	return &Handlers{Main: main, Webhook: writes}, nil
}

// versionString is the version for people: the release, and the revision of
// a build from source.
func versionString() string {
	v := version.Version
	if v == "" {
		v = "dev"
	}
	if r := version.Revision; r != "" && r != "unknown" {
		v += " (" + r[:min(len(r), 12)] + ")"
	}
	return v
}
