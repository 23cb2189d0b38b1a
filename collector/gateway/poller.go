package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
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
	skipped  *skippedLog
	last     lastFailure
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
	metrics, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	base, _ := baseURL(cfg.URL)
	mask := newKeyMask(cfg.Key)
	p := &Poller{
		cfg:    cfg,
		client: &client{http: httpClient, base: base.String(), key: cfg.Key, mask: mask, timeout: cfg.Timeout, metrics: metrics},
		sink:   sink, logger: cfg.Logger,
		failures: newFailureLog(cfg.Logger, cfg.Now, mask,
			"Polling the Gateway's REST API failed; the fleet keeps its last good observation"),
		stores: newFailureLog(cfg.Logger, cfg.Now, mask,
			"Storing what the Gateway's REST API said failed; nothing applied"),
		skipped: &skippedLog{logger: cfg.Logger, metrics: metrics},
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
		kind := err.Error()
		var pe *PollError
		if errors.As(err, &pe) {
			kind = pe.Endpoint + " " + pe.kind
		}
		p.failures.failed(kind, err.Error())
		p.last.set(start, p.failures.mask.mask(err.Error()))
		return
	}
	if err := p.sink.Observe(ctx, obs); err != nil {
		if ctx.Err() == nil {
			p.stores.failed(storeFailureKind(err), err.Error())
		}
		return
	}
	p.stores.succeeded("Stored what the Gateway's REST API said again")
	p.failures.succeeded("The Gateway's REST API answers again")
}

// storeFailureKind sorts a failure to store an observation for the log: by
// the hint of a storage error, which names its cause without details.
func storeFailureKind(err error) string {
	var se *writer.StorageError
	if errors.As(err, &se) {
		return se.Hint
	}
	return "refused"
}

// Poll reads both endpoints once and returns what they said. An answer
// that cannot be read as a whole (no answer, a status other than 200, no
// JSON or not the expected shape) fails the poll with a *PollError; an
// item of an answer that breaks the fleet's rules is skipped, counted and
// logged (see skippedLog), and the rest is kept.
func (p *Poller) Poll(ctx context.Context) (*fleet.Observation, error) {
	obs := &fleet.Observation{AtMs: p.cfg.Now().UnixMilli(), IntervalMs: p.cfg.Interval.Milliseconds()}
	body, err := p.client.get(ctx, endpointMediaServers, "/v1/mediaservers")
	if err != nil {
		return nil, err
	}
	servers, skipped, err := decodeMediaServers(body, p.client.mask)
	if err != nil {
		return nil, p.answerFailed(endpointMediaServers, err)
	}
	obs.MediaServers = servers
	if max := p.cfg.MaxMediaServers; max > 0 && len(obs.MediaServers) > max {
		return nil, p.client.failure(endpointMediaServers, "too many", "lists more media servers than --server.max")
	}
	apps, err := p.applications(ctx)
	if err != nil {
		return nil, err
	}
	obs.Applications = apps.facts
	if err := obs.Validate(); err != nil { // a rule the items were not checked by: a bug
		return nil, p.client.failure("answers", "invalid", err.Error())
	}
	p.skipped.report(append(skipped, apps.skipped...), apps.listed, apps.unread)
	return obs, nil
}

// answerFailed is the *PollError of an answer that cannot be read.
func (p *Poller) answerFailed(endpoint string, err error) *PollError {
	var bad *badAnswer
	if errors.As(err, &bad) {
		return p.client.failure(endpoint, bad.kind, bad.text)
	}
	return p.client.failure(endpoint, "invalid", err.Error())
}

// applicationsRead is what a poll read of the applications.
type applicationsRead struct {
	facts   []fleet.ApplicationFacts
	skipped []skippedItem
	listed  int // ids listed, valid or not
	unread  int // listed after the first maxApplications valid ones
}

// applications reads the ids in use, then each one's snapshot, a few at a
// time. An application that ended in between (404) is left out; one whose
// snapshot has a bad member is skipped; any other failure fails them all.
func (p *Poller) applications(ctx context.Context) (applicationsRead, error) {
	var read applicationsRead
	body, err := p.client.get(ctx, endpointApplications, "/v1.0/applications")
	if err != nil {
		return read, err
	}
	// The ids are checked before any is put in a request.
	ids, skipped, unread, err := decodeApplicationIDs(body, p.client.mask)
	if err != nil {
		return read, p.answerFailed(endpointApplications, err)
	}
	read.skipped, read.unread, read.listed = skipped, unread, len(ids)+len(skipped)+unread
	snapshots := make([]snapshot, len(ids))
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
			snapshots[i] = p.application(ctx, id)
			if snapshots[i].err != nil {
				cancel(snapshots[i].err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return read, err
	}
	for i, s := range snapshots {
		switch {
		case s.gone:
			p.logger.Debug("An application listed by the Gateway ended before its snapshot was read", "application", itemName(ids[i], i, p.client.mask))
		case s.skip != nil:
			read.skipped = append(read.skipped, skippedItem{endpointApplication, s.skip, itemName(ids[i], i, p.client.mask)})
		default:
			read.facts = append(read.facts, s.facts)
		}
	}
	return read, nil
}

// snapshot is what became of one application's snapshot.
type snapshot struct {
	facts fleet.ApplicationFacts
	gone  bool       // 404: the application ended since it was listed
	skip  *itemError // read, but to be skipped
	err   error      // fails the poll
}

func (p *Poller) application(ctx context.Context, id string) snapshot {
	body, err := p.client.get(ctx, endpointApplication, "/v1.0/applications/"+url.PathEscape(id))
	var pe *PollError
	switch {
	case errors.As(err, &pe) && pe.status == http.StatusNotFound:
		return snapshot{gone: true}
	case err != nil:
		return snapshot{err: err}
	}
	facts, skip, err := decodeApplication(body, id)
	if err != nil {
		return snapshot{err: p.answerFailed(endpointApplication, err)}
	}
	return snapshot{facts: facts, skip: skip}
}
