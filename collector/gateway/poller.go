package gateway

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// Sink is where a poller's results go: the fleet's writer
// (*writer.Writer), through which webhooks go too.
type Sink interface {
	// Observe applies a successful poll, once it is durable.
	Observe(ctx context.Context, obs *fleet.Observation) error
	// PollFailed records a failed poll; nothing is written.
	PollFailed(at time.Time)
	// Claim reports whether this exporter is the one to poll now: replicas
	// sharing a fleet take turns, so that one of them polls for all.
	Claim(ctx context.Context, duty string, ttl time.Duration) bool
}

// claimDuty names the polling duty among replicas.
const claimDuty = "gateway-poll"

// Poller polls the Gateway's API every interval and hands what it read to
// its Sink.
type Poller struct {
	cfg      Config
	client   *client
	sink     Sink
	logger   *slog.Logger
	failures *failureLog
	stores   *failureLog
}

// New checks cfg, registers the request metrics in reg and returns a poller
// writing to sink. Call Run to start polling.
func New(cfg Config, sink Sink, reg prometheus.Registerer) (*Poller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	httpClient, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	metrics, err := newRequestMetrics(reg)
	if err != nil {
		return nil, err
	}
	base, _ := baseURL(cfg.URL)
	p := &Poller{
		cfg:    cfg,
		client: &client{http: httpClient, base: base.String(), key: cfg.Key, timeout: cfg.Timeout, metrics: metrics},
		sink:   sink, logger: cfg.Logger,
		failures: newFailureLog(cfg.Logger, cfg.Now, cfg.Key,
			"Polling the Gateway's REST API failed; the fleet keeps its last good observation"),
		stores: newFailureLog(cfg.Logger, cfg.Now, cfg.Key,
			"Storing what the Gateway's REST API said failed; nothing applied"),
	}
	return p, nil
}

// Run polls at once, then every interval, until ctx ends. A replica that
// does not hold the claim skips the poll: another polls for it.
func (p *Poller) Run(ctx context.Context) {
	base, _ := baseURL(p.cfg.URL)
	p.logger.Info("Polling the Gateway's REST API", "gateway", (&url.URL{Scheme: base.Scheme, Host: base.Host}).String(),
		"interval", p.cfg.Interval, "timeout", p.cfg.Timeout, "api_key", p.cfg.Key != "")
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick polls once if this exporter holds the claim. The claim outlives two
// intervals, so that the replica that polls goes on polling while it lives.
func (p *Poller) tick(ctx context.Context) {
	if !p.sink.Claim(ctx, claimDuty, 2*p.cfg.Interval+p.cfg.Timeout) {
		return
	}
	start := p.cfg.Now()
	obs, err := p.Poll(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.sink.PollFailed(start)
		p.failures.failed(err.Error())
		return
	}
	if err := p.sink.Observe(ctx, obs); err != nil {
		if ctx.Err() == nil {
			p.stores.failed(err.Error())
		}
		return
	}
	p.stores.succeeded("Stored what the Gateway's REST API said again")
	p.failures.succeeded("The Gateway's REST API answers again")
}

// Poll reads both endpoints once and returns what they said, checked
// against the fleet's rules for label values. Any bad answer fails the
// whole poll with a *PollError.
func (p *Poller) Poll(ctx context.Context) (*fleet.Observation, error) {
	obs := &fleet.Observation{AtMs: p.cfg.Now().UnixMilli(), IntervalMs: p.cfg.Interval.Milliseconds()}
	body, err := p.client.get(ctx, endpointMediaServers, "/v1/mediaservers")
	if err != nil {
		return nil, err
	}
	if obs.MediaServers, err = decodeMediaServers(body); err != nil {
		return nil, &PollError{endpointMediaServers, err.Error()}
	}
	if max := p.cfg.MaxMediaServers; max > 0 && len(obs.MediaServers) > max {
		return nil, &PollError{endpointMediaServers, "lists more media servers than --server.max"}
	}
	if obs.Applications, err = p.applications(ctx); err != nil {
		return nil, err
	}
	if err := obs.Validate(); err != nil {
		return nil, &PollError{"answers", err.Error()}
	}
	return obs, nil
}

// applications reads the ids in use, then each one's snapshot, a few at a
// time; the first failure fails them all.
func (p *Poller) applications(ctx context.Context) ([]fleet.ApplicationFacts, error) {
	body, err := p.client.get(ctx, endpointApplications, "/v1.0/applications")
	if err != nil {
		return nil, err
	}
	ids, err := decodeApplicationIDs(body)
	if err != nil {
		return nil, &PollError{endpointApplications, err.Error()}
	}
	// The ids are checked before any is put in a request.
	apps := make([]fleet.ApplicationFacts, len(ids))
	for i, id := range ids {
		apps[i].ID = id
	}
	if err := (&fleet.Observation{AtMs: 1, IntervalMs: 1, Applications: apps}).Validate(); err != nil {
		return nil, &PollError{endpointApplications, err.Error()}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			app, err := p.application(ctx, id)
			if err != nil {
				cancel(err)
			}
			apps[i] = app
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return apps, nil
}

func (p *Poller) application(ctx context.Context, id string) (fleet.ApplicationFacts, error) {
	body, err := p.client.get(ctx, endpointApplication, "/v1.0/applications/"+url.PathEscape(id))
	if err != nil {
		return fleet.ApplicationFacts{}, err
	}
	app, err := decodeApplication(body, id)
	if err != nil {
		return fleet.ApplicationFacts{}, &PollError{endpointApplication, err.Error()}
	}
	return app, nil
}
