package exporter

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// ApplicationIngester counts the events of application webhooks
// (collector/applications.Tracker is the implementation). It returns
// event.ErrNotApplications for a body that holds none, and calls
// verify with the applications a body names before it counts anything;
// an *applications.StateError when the shared state failed, having
// counted nothing.
type ApplicationIngester interface {
	Ingest(ctx context.Context, body []byte, verify func(applicationIDs []string) error) (applications.Result, error)
}

// stateHint is the answer to an application webhook the shared state
// could not take: LiveSwitch retries it, and it counts once.
const stateHint = "not counted: the shared application state did not answer; retry"

// refusalLogInterval spaces the log lines of refused signatures: a
// misconfigured secret refuses every webhook of its application.
const refusalLogInterval = 10 * time.Second

// ApplicationRoute hands the bodies of application webhooks, once their
// signature is checked, to an ApplicationIngester; the others go on to
// the fleet. A nil route sends everything to the fleet.
type ApplicationRoute struct {
	in ApplicationIngester
	// secrets, when not nil, must sign every application body.
	secrets  *appsig.File
	refusals *prometheus.CounterVec
	logger   *slog.Logger
	logs     *ratelog.Limiter
}

// newApplicationRoute builds the route of cfg and registers its counter,
// or returns nil when cfg has no ApplicationIngester.
func newApplicationRoute(cfg Config) (*ApplicationRoute, error) {
	if cfg.Applications == nil {
		return nil, nil
	}
	a := &ApplicationRoute{in: cfg.Applications, secrets: cfg.ApplicationSecrets, logger: cfg.Logger,
		logs: ratelog.New(refusalLogInterval, cfg.Now),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveswitch_exporter_application_signature_refusals_total",
			Help: "Application webhooks answered 401 for their X-ApplicationSignature, by reason; nothing of them was counted.",
		}, []string{"reason"})}
	for _, r := range appsig.Reasons() {
		a.refusals.WithLabelValues(r.String())
	}
	cs := []prometheus.Collector{a.refusals}
	if a.secrets != nil {
		cs = append(cs, a.secrets.Collector())
	}
	for _, c := range cs {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// ingest gives body to the route when it holds application events, else
// to the fleet's writer.
func (a *ApplicationRoute) ingest(r *http.Request, body []byte, fleetWriter Ingester) (webhookResult, error) {
	if a == nil {
		return fleetWriter.Ingest(r.Context(), body)
	}
	var verify func([]string) error
	if a.secrets != nil {
		signature := r.Header.Get(appsig.Header)
		verify = func(apps []string) error { return a.verify(r, body, signature, apps) }
	}
	res, err := a.in.Ingest(r.Context(), body, verify)
	var unavailable *applications.StateError
	switch {
	case errors.Is(err, event.ErrNotApplications):
		return fleetWriter.Ingest(r.Context(), body)
	case errors.As(err, &unavailable): // logged by the tracker, at most once per interval
		return res, &writer.StorageError{Hint: stateHint, Err: err}
	}
	return res, err
}

// verify checks the signature over the raw body, and counts and logs a
// refusal (never a secret).
func (a *ApplicationRoute) verify(r *http.Request, body []byte, signature string, apps []string) error {
	err := appsig.Verify(a.secrets.Secrets(), body, signature, apps)
	var refused *appsig.Error
	if errors.As(err, &refused) {
		a.refusals.WithLabelValues(refused.Reason.String()).Inc()
		a.logs.Log(a.logger, slog.LevelWarn, "Application webhook refused: its signature does not hold",
			"reason", refused.Reason.String(), "application", refused.Application, "remote", r.RemoteAddr)
	}
	return err
}
