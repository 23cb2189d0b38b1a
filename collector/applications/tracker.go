package applications

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// Options configure a Tracker.
type Options struct {
	Decode event.DecodeOptions
	// MaxApplications caps the applications counted; events of further
	// applications are refused (counted in
	// liveswitch_exporter_events_total{outcome="refused"} only). 0 means
	// no cap.
	MaxApplications int
	// MaxPending caps the connections waiting for their "connected"; when
	// full, the oldest is dropped for the newest. 0 means no cap (entries
	// still expire).
	MaxPending int
	// PendingTTL is how long a connection may wait for its "connected",
	// by the exporter's clock; DefaultPendingTTL when 0.
	PendingTTL time.Duration
	// Now is the exporter's clock; tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Defaults of the options the operator does not set.
const (
	DefaultMaxApplications = 1000
	DefaultMaxPending      = 100000
	DefaultPendingTTL      = 5 * time.Minute
)

// refusalLogInterval spaces the warnings about refused applications.
const refusalLogInterval = time.Minute

// Tracker counts the events of application webhooks. It is safe for
// concurrent use, and a prometheus.Collector of its series.
type Tracker struct {
	opts     Options
	metrics  *metrics
	outcomes *fleet.OutcomeCounter
	logs     *ratelog.Limiter

	mu sync.Mutex
	// apps are the applications counted, each with its recent counts.
	apps    map[string]*recent
	pending *pendingTable
}

// New returns a Tracker with nothing counted.
func New(opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PendingTTL <= 0 {
		opts.PendingTTL = DefaultPendingTTL
	}
	return &Tracker{
		opts: opts, metrics: newMetrics(), outcomes: &fleet.OutcomeCounter{},
		logs: ratelog.New(refusalLogInterval, opts.Now),
		apps: map[string]*recent{}, pending: newPendingTable(opts.MaxPending, opts.PendingTTL),
	}
}

// Outcomes counts the application events the Tracker did not take: refused
// (past MaxApplications) and invalid (in a body rejected as malformed); the
// events it took are counted under their type. Give it to
// collector.Collector.CountAlso.
func (t *Tracker) Outcomes() *fleet.OutcomeCounter { return t.outcomes }

// Ingest takes the body of a webhook, and is the package's entry point.
//
// It returns event.ErrNotApplications, having counted nothing, for a
// body without application events: the fleet's. A malformed body, or one
// mixing server and application events, is a *event.InvalidError,
// counted as invalid. Then verify, when not nil, is given the applications
// the events name, in order, "" standing for events that name none; an
// error of verify is returned as is, and nothing is counted. Otherwise
// every event is counted, and the result says how.
func (t *Tracker) Ingest(body []byte, verify func(applicationIDs []string) error) (fleet.Result, error) {
	now := t.opts.Now()
	events, err := event.DecodeApplications(body, t.opts.Decode, now)
	var invalid *event.InvalidError
	switch {
	case errors.As(err, &invalid):
		t.outcomes.Add(fleet.OutcomeInvalid, invalid.Events, now)
		return fleet.Result{}, err
	case err != nil:
		return fleet.Result{}, err
	}
	if verify != nil {
		if err := verify(applicationIDs(events)); err != nil {
			return fleet.Result{}, err
		}
	}
	res := t.apply(events, now)
	t.outcomes.AddResult(res, now)
	return res, nil
}

// applicationIDs lists the distinct applications events name, in order.
func applicationIDs(events []event.ApplicationEvent) []string {
	var ids []string
	seen := map[string]bool{}
	for _, ev := range events {
		if !seen[ev.ApplicationID] {
			seen[ev.ApplicationID] = true
			ids = append(ids, ev.ApplicationID)
		}
	}
	return ids
}

// apply counts the events of one body, all under one lock, so that the
// two ends of a connection are paired whatever other bodies come at once.
func (t *Tracker) apply(events []event.ApplicationEvent, now time.Time) fleet.Result {
	var res fleet.Result
	refused := 0
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range events {
		o := t.count(&events[i], now)
		res.Outcomes[o]++
		if o == fleet.OutcomeRefused {
			refused++
		}
	}
	if refused > 0 {
		t.logs.Log(t.opts.Logger, slog.LevelWarn, "Applications at --application.max: events of further applications refused",
			"max", t.opts.MaxApplications, "refused", refused)
	}
	return res
}

// count counts one event and says what became of it.
func (t *Tracker) count(ev *event.ApplicationEvent, now time.Time) fleet.Outcome {
	switch {
	case !kinds[ev.Type] || ev.ApplicationID == "":
		return fleet.OutcomeIgnored
	case !t.admit(ev.ApplicationID):
		return fleet.OutcomeRefused
	}
	app := ev.ApplicationID
	t.metrics.events.WithLabelValues(app, ev.Type).Inc()
	if ev.Type == failed {
		t.metrics.failures.WithLabelValues(app, connectionType(ev.ConnectionType)).Inc()
	}
	var setup float64
	observed := false
	if ev.ConnectionID != "" {
		setup, observed = t.pair(ev, now)
	}
	t.apps[app].count(now, ev.Type, setup, observed)
	return fleet.OutcomeApplied
}

// admit reports whether app's events are counted: it is known, or there is
// room for it. A new application starts with its connected and failed
// counters at zero, so that its failure ratio exists from its first
// event on.
func (t *Tracker) admit(app string) bool {
	if t.apps[app] != nil {
		return true
	}
	if t.opts.MaxApplications > 0 && len(t.apps) >= t.opts.MaxApplications {
		return false
	}
	t.apps[app] = &recent{}
	t.metrics.events.WithLabelValues(app, connected)
	t.metrics.events.WithLabelValues(app, failed)
	return true
}

// pair moves a connection through the pending table: an initializing
// enters it, a connected leaves it and is observed when it came after its
// initializing (the setup time in seconds is returned), a failed or closed
// leaves it unobserved.
func (t *Tracker) pair(ev *event.ApplicationEvent, now time.Time) (setup float64, observed bool) {
	k := t.pending.key(ev.ApplicationID, ev.ConnectionID)
	switch ev.Type {
	case initializing:
		t.pending.start(k, ev.Timestamp, now)
	case connected:
		if startMs, ok := t.pending.finish(k); ok && ev.Timestamp >= startMs {
			setup = float64(ev.Timestamp-startMs) / 1000
			t.metrics.setup.WithLabelValues(ev.ApplicationID).Observe(setup)
			return setup, true
		}
	case failed, closed:
		t.pending.finish(k)
	}
	return 0, false
}

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) { t.metrics.describe(ch) }

// Collect implements prometheus.Collector. Expired pending connections are
// dropped first, so that the drops show even when no event comes.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	t.pending.expire(t.opts.Now())
	g := gauges{
		dropped: t.pending.dropped, pending: t.pending.len(), pendingLimit: t.opts.MaxPending,
		tracked: len(t.apps), limit: t.opts.MaxApplications,
	}
	t.mu.Unlock()
	t.metrics.collect(ch, g)
}
