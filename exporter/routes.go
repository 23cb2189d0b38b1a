package exporter

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
)

// Config is what the routes need from the rest of the program.
type Config struct {
	TelemetryPath string
	Ingester      Ingester
	Forgetter     Forgetter
	// Ready reports whether the fleet is restored and writable.
	Ready        func() bool
	MaxBodyBytes int64
	Registry     *prometheus.Registry
	Logger       *slog.Logger
}

// WebhookPath is where LiveSwitch is told to post server events.
const WebhookPath = "/webhook"

// NewHandler returns the exporter's whole HTTP surface.
func NewHandler(cfg Config) (http.Handler, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveswitch_exporter_webhook_requests_total",
		Help: "Webhook requests by HTTP status code of the answer.",
	}, []string{"code"})
	for _, code := range []string{"202", "204", "400", "405", "413", "503"} {
		requests.WithLabelValues(code)
	}
	if err := cfg.Registry.Register(requests); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(WebhookPath, promhttp.InstrumentHandlerCounter(requests,
		WebhookHandler(cfg.Ingester, cfg.Ready, cfg.MaxBodyBytes, cfg.Logger)))
	mux.Handle("DELETE /api/v1/servers/{origin}/{id}", DeleteServerHandler(cfg.Forgetter, cfg.Logger))
	mux.Handle(cfg.TelemetryPath, promhttp.InstrumentMetricHandler(cfg.Registry,
		promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
			EnableOpenMetrics: true,
		})))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, "Healthy")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !cfg.Ready() {
			unavailable(w, "Not ready")
			return
		}
		reply(w, http.StatusOK, "Ready")
	})
	if cfg.TelemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "LiveSwitch Exporter",
			Description: "Prometheus exporter of LiveSwitch server webhooks",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: cfg.TelemetryPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}
