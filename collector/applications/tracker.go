package applications

import (
	"cmp"
	"context"
	"errors"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// Options configure a Tracker.
type Options struct {
	// Decode bounds bodies; its MaxFutureSkew refuses events stamped too
	// far ahead, one by one (the body is not rejected). Application events
	// are always bounded ahead, so that the memory of events is: without a
	// MaxFutureSkew, by MaxEventAge.
	Decode event.DecodeOptions
	// MaxApplications caps the applications counted; events of further
	// applications are refused. 0 means no cap.
	MaxApplications int
	// MaxPending, MaxChannels and MaxClients cap the connections, channels
	// and clients held between their start and their end; when a table is
	// full, the entry closest to expiring is dropped for the new one. 0
	// means no cap (entries still expire).
	MaxPending, MaxChannels, MaxClients int
	// PendingTTL is how long a connection may wait for its "connected"
	// (DefaultPendingTTL when 0); OpenTTL how long a connected connection,
	// a channel or a client is held without its end (DefaultOpenTTL).
	PendingTTL, OpenTTL time.Duration
	// MaxEventAge refuses events older than this by event time
	// (DefaultMaxEventAge when 0); events are remembered that long.
	MaxEventAge time.Duration
	// MaxRemembered caps the events remembered; 0 means no cap.
	MaxRemembered int
	// IdleAfter frees the slot (and the series) of an application without
	// an event for this long that the Gateway does not list; 0 never does.
	IdleAfter time.Duration
	// GatewayApplications returns the applications the Gateway's last
	// successful poll listed; nil when it is not polled.
	GatewayApplications func() []string
	// State holds the tables and the memory of events; nil keeps them in
	// this process (NewMemory of Limits()). A shared State bounds its
	// calls itself.
	State callstate.State
	// Now is the exporter's clock; tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultMaxApplications is --application.max's default.
const DefaultMaxApplications = 1000

// Limits are the bounds of the State the options describe: give the same
// to a shared State.
func (o Options) Limits() callstate.Limits {
	l := callstate.Limits{
		MaxEntries: [callstate.NumTables]int{callstate.TableConnections: o.MaxPending, callstate.TableChannels: o.MaxChannels, callstate.TableClients: o.MaxClients},
		PendingTTL: o.PendingTTL, OpenTTL: o.OpenTTL,
		MaxEventAge: o.MaxEventAge, MaxFutureSkew: o.Decode.MaxFutureSkew, MaxRemembered: o.MaxRemembered,
	}
	if l.MaxFutureSkew <= 0 {
		l.MaxFutureSkew = l.WithDefaults().MaxEventAge
	}
	return l.WithDefaults()
}

// Log intervals: refused applications and a failing State are logged at
// most this often.
const (
	refusalLogInterval = time.Minute
	stateLogInterval   = 10 * time.Second
	// idleSweepInterval spaces the sweeps a full tracker makes for idle
	// applications when a new one knocks.
	idleSweepInterval = time.Second
)

// Tracker counts the events of application webhooks. It is safe for
// concurrent use, and a prometheus.Collector of its series.
type Tracker struct {
	opts     Options
	limits   callstate.Limits
	decode   event.DecodeOptions
	state    callstate.State
	metrics  *metrics
	outcomes *fleet.OutcomeCounter
	logs     *ratelog.Limiter
	// stateLogs spaces the logs of a failing State.
	stateLogs *ratelog.Limiter

	mu sync.Mutex
	// apps are the applications counted.
	apps map[string]*appState
	// dropped counts this replica's drops from the State's tables.
	dropped callstate.Drops
	// sweptMs is when idle applications were last looked for.
	sweptMs int64
	// refusalTexts say why events are refused, in answers.
	refusalTexts [numRefusals]string
}

// appState is what the Tracker holds of one application.
type appState struct {
	recent recent
	// lastMs is when its last event was counted, by the exporter's clock.
	lastMs int64
}

// New returns a Tracker with nothing counted.
func New(opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	limits := opts.Limits()
	if opts.State == nil {
		opts.State = callstate.NewMemory(limits)
	}
	decode := opts.Decode
	decode.MaxFutureSkew = 0 // refused event by event, in admit
	t := &Tracker{
		opts: opts, limits: limits, decode: decode, state: opts.State, metrics: newMetrics(), outcomes: &fleet.OutcomeCounter{},
		logs: ratelog.New(refusalLogInterval, opts.Now), stateLogs: ratelog.New(stateLogInterval, opts.Now),
		apps: map[string]*appState{},
	}
	t.refusalTexts = t.limitsText()
	for why := range numRefusals {
		t.metrics.refused.WithLabelValues(why.String())
	}
	return t
}

// Outcomes counts the application events the Tracker did not count under
// their type: ignored (undocumented type, no application), duplicate,
// refused and invalid. Give it to collector.Collector.CountAlso.
func (t *Tracker) Outcomes() *fleet.OutcomeCounter { return t.outcomes }

// StateError is a failure of the State: nothing of the body was counted,
// and the sender should retry.
type StateError struct{ Err error }

func (e *StateError) Error() string { return "the application state did not answer: " + e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

// Ingest takes the body of a webhook, and is the package's entry point.
//
// It returns event.ErrNotApplications, having counted nothing, for a
// body without application events: the fleet's. A malformed body, or one
// mixing server and application events, is a *event.InvalidError,
// counted as invalid. Then verify, when not nil, is given the applications
// the events name, in order, "" standing for events that name none; an
// error of verify is returned as is, and nothing is counted. A failure of
// the State is a *StateError, and nothing is counted either. Otherwise
// every event is counted once, or said why not, in the result.
func (t *Tracker) Ingest(ctx context.Context, body []byte, verify func(applicationIDs []string) error) (Result, error) {
	now := t.opts.Now()
	events, err := event.DecodeApplications(body, t.decode, now)
	var invalid *event.InvalidError
	switch {
	case errors.As(err, &invalid):
		t.outcomes.Add(fleet.OutcomeInvalid, invalid.Events, now)
		return Result{}, err
	case err != nil:
		return Result{}, err
	}
	if verify != nil {
		if err := verify(applicationIDs(events)); err != nil {
			return Result{}, err
		}
	}
	res := Result{limits: t.refusalTexts}
	facts, at := t.admit(events, now, &res)
	effects := make([]callstate.Effect, len(facts))
	var drops callstate.Drops
	if len(facts) > 0 {
		if drops, err = t.state.Apply(ctx, facts, now, effects); err != nil {
			t.metrics.stateErrors.Inc()
			t.stateLogs.Log(t.opts.Logger, slog.LevelError, "The application state failed; application webhooks answered 503", "err", err)
			return Result{}, &StateError{Err: err}
		}
	}
	t.observe(events, facts, at, effects, drops, now, &res)
	for _, o := range []fleet.Outcome{fleet.OutcomeIgnored, fleet.OutcomeDuplicate} {
		t.outcomes.Add(o, res.Outcomes[o], now)
	}
	t.outcomes.AddResult(res.Result, now)
	for why, n := range res.Refused {
		if n > 0 {
			t.metrics.refused.WithLabelValues(Refusal(why).String()).Add(float64(n))
		}
	}
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

// admit decides, event by event, what is ignored, what refused and what
// goes to the State, and returns the facts of the latter with the index of
// their event.
func (t *Tracker) admit(events []event.ApplicationEvent, now time.Time, res *Result) ([]callstate.Fact, []int) {
	nowMs := now.UnixMilli()
	oldest, newest := nowMs-t.limits.MaxEventAge.Milliseconds(), nowMs+t.limits.MaxFutureSkew.Milliseconds()
	facts := make([]callstate.Fact, 0, len(events))
	at := make([]int, 0, len(events))
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range events {
		ev := &events[i]
		op, documented := kinds[ev.Type]
		switch {
		case !documented || ev.ApplicationID == "":
			res.Outcomes[fleet.OutcomeIgnored]++
			continue
		case ev.Timestamp < oldest:
			res.refuse(RefusedTooOld)
			continue
		case ev.Timestamp > newest:
			res.refuse(RefusedTooFarAhead)
			continue
		case !t.admitApp(ev.ApplicationID, nowMs):
			res.refuse(RefusedMaxApplications)
			continue
		}
		facts = append(facts, fact(ev, op))
		at = append(at, i)
	}
	if n := res.Refused[RefusedMaxApplications]; n > 0 {
		t.logs.Log(t.opts.Logger, slog.LevelWarn, "Applications at --application.max: events of further applications refused until one is idle for --application.idle-after",
			"max", t.opts.MaxApplications, "idle_after", t.opts.IdleAfter, "refused", n)
	}
	return facts, at
}

// fact is what the State takes of ev: the entity its op changes (none
// without the entity's id) and its identity.
func fact(ev *event.ApplicationEvent, op callstate.Op) callstate.Fact {
	f := callstate.Fact{App: ev.ApplicationID, Op: op, Ms: ev.Timestamp,
		Seen: callstate.EventKey(ev.ApplicationID, ev.Type, ev.Timestamp, ev.ConnectionID, ev.ChannelID, ev.ClientID)}
	if tb, ok := op.Table(); ok {
		id := [callstate.NumTables]string{callstate.TableConnections: ev.ConnectionID, callstate.TableChannels: ev.ChannelID, callstate.TableClients: ev.ClientID}[tb]
		if id == "" {
			f.Op = callstate.OpNone
		} else {
			f.Entity = callstate.EntityKey(tb, ev.ApplicationID, id)
		}
	}
	return f
}

// admitApp reports whether app's events are counted: it is known, or
// there is room for it (after freeing the slots of idle applications, at
// most once a second). A new application starts with its connected and
// failed counters at zero, so that its failure ratio exists from its
// first event on. Its last event is now.
func (t *Tracker) admitApp(app string, nowMs int64) bool {
	if a := t.apps[app]; a != nil {
		a.lastMs = nowMs
		return true
	}
	full := func() bool { return t.opts.MaxApplications > 0 && len(t.apps) >= t.opts.MaxApplications }
	if full() && nowMs-t.sweptMs >= idleSweepInterval.Milliseconds() {
		t.forgetIdle(nowMs)
	}
	if full() {
		return false
	}
	t.apps[app] = &appState{lastMs: nowMs}
	t.metrics.events.WithLabelValues(app, connected)
	t.metrics.events.WithLabelValues(app, failed)
	return true
}

// forgetIdle frees the slot and deletes the series of every application
// without an event for IdleAfter that the Gateway does not list. The
// Gateway's list is read only when some application is idle.
func (t *Tracker) forgetIdle(nowMs int64) {
	t.sweptMs = nowMs
	if t.opts.IdleAfter <= 0 {
		return
	}
	var idle []string
	for id, a := range t.apps {
		if nowMs-a.lastMs >= t.opts.IdleAfter.Milliseconds() {
			idle = append(idle, id)
		}
	}
	if len(idle) == 0 {
		return
	}
	listed := map[string]bool{}
	if t.opts.GatewayApplications != nil {
		for _, id := range t.opts.GatewayApplications() {
			listed[id] = true
		}
	}
	var forgotten []string
	for _, id := range idle {
		if listed[id] {
			continue
		}
		delete(t.apps, id)
		t.metrics.forget(id)
		t.metrics.forgotten.Inc()
		forgotten = append(forgotten, id)
	}
	if len(forgotten) > 0 { // one line, however many: the first few named
		slices.Sort(forgotten)
		t.opts.Logger.Info("Idle applications gave up their slots and series", "applications", len(forgotten),
			"first", forgotten[:min(len(forgotten), 5)], "idle_after", t.opts.IdleAfter)
	}
}

// observe counts what the State did with the facts of events (at[j] is the
// event of fact j).
func (t *Tracker) observe(events []event.ApplicationEvent, facts []callstate.Fact, at []int, effects []callstate.Effect, drops callstate.Drops, now time.Time, res *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropped.Add(drops)
	for j, i := range at {
		ev, e := &events[i], &effects[j]
		if e.Duplicate {
			res.Outcomes[fleet.OutcomeDuplicate]++
			continue
		}
		res.Outcomes[fleet.OutcomeApplied]++
		if e.Unremembered {
			t.metrics.unremembered.Inc()
		}
		a := t.apps[ev.ApplicationID]
		if a == nil { // forgotten meanwhile (it had been idle): back in
			a = &appState{}
			t.apps[ev.ApplicationID] = a
		}
		a.lastMs = now.UnixMilli()
		setup, observed := t.count(ev, facts[j].Op, e)
		a.recent.count(now, ev.Type, setup, observed)
	}
}

// count counts one event in the series, and returns the setup time it
// completed, if any.
func (t *Tracker) count(ev *event.ApplicationEvent, op callstate.Op, e *callstate.Effect) (setup float64, observed bool) {
	m, app := t.metrics, ev.ApplicationID
	m.events.WithLabelValues(app, ev.Type).Inc()
	seconds := float64(e.SpanMs) / 1000
	switch op {
	case callstate.OpConnectionUp:
		if e.SpanMs >= 0 {
			m.setup.WithLabelValues(app).Observe(seconds)
			return seconds, true
		}
	case callstate.OpConnectionClose, callstate.OpConnectionFail:
		if e.SpanMs >= 0 {
			m.connectionDuration.WithLabelValues(app, connectionType(ev.ConnectionType)).Observe(seconds)
		}
	case callstate.OpChannelOff:
		if e.SpanMs >= 0 {
			m.channelDuration.WithLabelValues(app).Observe(seconds)
			m.size.WithLabelValues(app).Observe(float64(e.Peak))
		}
	}
	if ev.Type == failed {
		phase := e.Phase
		if op == callstate.OpNone { // no connection id: nothing to pair it with
			phase = callstate.PhaseUnknown
		}
		m.failures.WithLabelValues(app, connectionType(ev.ConnectionType)).Inc()
		m.causes.WithLabelValues(app, ClassifyError(ev.Error).String()).Inc()
		m.phases.WithLabelValues(app, phase.String()).Inc()
	}
	return 0, false
}

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) { t.metrics.describe(ch) }

// Collect implements prometheus.Collector. Expired entries are dropped
// and idle applications forgotten first, so that it shows even when no
// event comes; the levels come from the State, and are left out when it
// does not answer.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	now := t.opts.Now()
	ctx := context.Background() // a shared callstate.State bounds its calls
	drops, sweepErr := t.state.Sweep(ctx, now)
	t.mu.Lock()
	t.dropped.Add(drops)
	t.forgetIdle(now.UnixMilli())
	g := &gauges{
		apps: slices.Sorted(maps.Keys(t.apps)), limits: t.limits.MaxEntries, dropped: t.dropped,
		rememberedLimit: t.limits.MaxRemembered, tracked: len(t.apps), maxApplications: t.opts.MaxApplications,
	}
	t.mu.Unlock()
	levels, levelsErr := t.state.Levels(ctx, g.apps)
	if levelsErr == nil {
		g.levels = levels
	}
	sizes, sizesErr := t.state.Sizes(ctx, now)
	if sizesErr == nil {
		g.sizes = &sizes
	}
	if err := cmp.Or(sweepErr, levelsErr, sizesErr); err != nil {
		t.stateLogs.Log(t.opts.Logger, slog.LevelWarn, "The application state did not answer a scrape; its levels are left out", "err", err)
	}
	t.metrics.collect(ch, g)
}
