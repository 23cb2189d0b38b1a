package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/gateway"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/replica"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

type serveCmd struct {
	ListenAddress []string `name:"web.listen-address" default:":9818" help:"Addresses to listen on for webhooks and scrapes."`
	TelemetryPath string   `name:"web.telemetry-path" default:"/metrics" help:"Path under which to expose metrics."`
	WebConfigFile string   `name:"web.config.file" default:"" help:"Path to an exporter-toolkit web configuration file (TLS, basic auth)."`

	ReadHeaderTimeout time.Duration `name:"web.read-header-timeout" default:"5s" min:"1ms" help:"Time a client has to send the request headers."`
	ReadTimeout       time.Duration `name:"web.read-timeout" default:"30s" min:"1ms" help:"Time a client has to send the whole request, body included."`
	TrustedProxies    []string      `name:"web.trusted-proxies" help:"Proxies (CIDRs or addresses) whose X-Forwarded-For is believed."`

	WebhookListenAddress []string `name:"webhook.listen-address" help:"Extra listeners serving only the webhook, the delete API and the probes, with their own web config (e.g. TLS without client certificates or basic auth, which LiveSwitch cannot present)."`
	WebhookWebConfigFile string   `name:"webhook.web-config.file" default:"" help:"exporter-toolkit web configuration of --webhook.listen-address."`
	WebhookTokenFile     string   `name:"webhook.token-file" default:"" help:"File holding the token LiveSwitch must send (Bearer header or ?token=)."`
	WebhookAllowedCIDRs  []string `name:"webhook.allowed-cidrs" help:"Source networks allowed to post webhooks (default: any)."`
	MaxInFlight          int      `name:"webhook.max-in-flight" default:"256" min:"0" help:"Most webhook requests served at once; more are answered 503 (0: no limit)."`

	MaxBodyBytes  int64         `name:"webhook.max-body-bytes" default:"1048576" min:"1" help:"Largest webhook body accepted, in bytes."`
	MaxEvents     int           `name:"webhook.max-events-per-request" default:"1000" min:"1" help:"Most events accepted in one batched webhook."`
	MaxFutureSkew time.Duration `name:"webhook.max-future-skew" default:"5m" min:"0" help:"How far ahead of this exporter's clock an event may be stamped."`

	StoragePath       string        `name:"storage.path" default:"./data" help:"Directory of the embedded fleet store; empty keeps the fleet in memory only."`
	StorageOnDamage   string        `name:"storage.on-damage" default:"refuse" enum:"refuse,start-empty" help:"What to do with a damaged store: refuse to start (exit non-zero), or move it aside and start with an empty fleet."`
	StorageInMemory   bool          `name:"storage.in-memory" help:"Keep the fleet in memory only (lost on exit): for tests and demos."`
	RedisURL          string        `name:"storage.redis-url" help:"Share the fleet with other replicas through this Redis (redis://[:password@]host:port/db, rediss:// for TLS, ?master_name=NAME&addr=... for Sentinel); excludes --storage.path."`
	RedisPrefix       string        `name:"storage.redis-prefix" default:"liveswitch_exporter:" help:"Prefix of the Redis keys, so that several LiveSwitch deployments can share one Redis."`
	RedisTimeout      time.Duration `name:"storage.redis-timeout" default:"2s" min:"1ms" help:"Longest a webhook waits for the shared Redis (append and fold); an append Redis runs later is refused by Redis itself."`
	RedisWaitReplicas int           `name:"storage.redis-wait-replicas" default:"0" min:"0" help:"Acknowledge a webhook only once this many Redis replicas have its entry (Redis WAIT); fewer in time is a 503 (0: do not wait)."`
	RedisWaitTimeout  time.Duration `name:"storage.redis-wait-timeout" default:"500ms" min:"1ms" help:"Longest wait for --storage.redis-wait-replicas; shorter than --storage.redis-timeout."`

	ServerRetention  time.Duration `name:"server.retention" default:"1h" min:"0" help:"Forget a stopped server this long after it stopped (0: never)."`
	ServerStaleAfter time.Duration `name:"server.stale-after" default:"0s" min:"0" help:"Forget a server of any state after this long without an event (0: never)."`
	ServerMax        int           `name:"server.max" default:"10000" min:"0" help:"Most servers tracked; when full, a new server evicts the one stopped longest ago, or is refused (0: no limit)."`

	Gateway gatewayFlags `embed:""`

	Applications applicationFlags `embed:""`
}

func (s *serveCmd) Run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go exitOnSecondSignal(ctx, logger)
	logger.Info("Starting "+name, "version", version.Info(), "build_context", version.BuildContext())
	tuneGC()

	// Everything that can refuse a start is checked, and every listener
	// bound, before the store is opened, so that a refused start leaves the
	// store as it was.
	st, err := s.prepare(logger)
	if err != nil {
		return err
	}
	f := fleet.New()
	opened, err := s.openWriter(ctx, f, logger)
	if err != nil {
		st.closeListeners()
		if errors.Is(err, errStopped) {
			logger.Info("Stopped while opening the store")
			return nil
		}
		return err
	}
	err = s.serve(ctx, logger, f, opened, st)
	opened.writer.Close()
	return errors.Join(err, opened.closeStore())
}

// startup is what Run checks, reads and binds before it opens the store.
type startup struct {
	guard   exporter.WriteGuard
	secrets *appsig.File
	gateway *gateway.Config // nil: the API is not polled
	// main and webhook are the listeners of --web.listen-address and
	// --webhook.listen-address.
	main, webhook []net.Listener
}

// prepare reads every file the flags name and binds every listener: all
// that can refuse a start once the flags are valid, done before the store
// is opened.
func (s *serveCmd) prepare(logger *slog.Logger) (*startup, error) {
	st := &startup{}
	var err error
	if st.guard, err = s.writeGuard(); err != nil {
		return nil, err
	}
	if err := s.checkWebConfigs(); err != nil {
		return nil, err
	}
	if st.secrets, err = s.Applications.openSecrets(logger); err != nil {
		return nil, err
	}
	if st.gateway, err = s.Gateway.config(logger); err != nil {
		return nil, err
	}
	if st.main, err = exporter.Listen(s.ListenAddress); err != nil {
		return nil, fmt.Errorf("--web.listen-address: %w", err)
	}
	if len(s.WebhookListenAddress) > 0 {
		if st.webhook, err = exporter.Listen(s.WebhookListenAddress); err != nil {
			st.closeListeners()
			return nil, fmt.Errorf("--webhook.listen-address: %w", err)
		}
	}
	return st, nil
}

// closeListeners closes the listeners of a start that will not serve.
func (st *startup) closeListeners() {
	exporter.CloseListeners(st.main)
	exporter.CloseListeners(st.webhook)
}

// exitOnSecondSignal ends the process at once when a second SIGINT or
// SIGTERM comes during the graceful shutdown: everything acknowledged is
// durable already, and an operator who asks twice means it.
func exitOnSecondSignal(ctx context.Context, logger *slog.Logger) {
	<-ctx.Done()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	<-again
	logger.Warn("Second signal: exiting at once; every acknowledged event is already stored")
	os.Exit(1)
}

// checkWebConfigs reads the exporter-toolkit web configurations, so that a
// bad one refuses the start before anything else happens.
func (s *serveCmd) checkWebConfigs() error {
	for flag, path := range map[string]string{"--web.config.file": s.WebConfigFile, "--webhook.web-config.file": s.WebhookWebConfigFile} {
		if path == "" {
			continue
		}
		if err := web.Validate(path); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return nil
}

// serve restores the fleet and serves until ctx ends or a listener fails.
func (s *serveCmd) serve(ctx context.Context, logger *slog.Logger, f *fleet.Fleet, opened *openedStore, st *startup) error {
	if st.guard.Token == "" {
		logger.Warn("The webhook is unauthenticated: anyone who can reach it can change the fleet; set --webhook.token-file")
	}
	w := opened.writer
	appOpts := s.Applications.options(s.decodeOptions(), f, logger)
	appState, err := s.applicationState(appOpts.Limits(), logger)
	if err != nil {
		st.closeListeners()
		return err
	}
	defer appState.close()
	appOpts.State = appState.state
	apps := applications.New(appOpts)
	registry := exporter.NewRegistry(collector.NewCollector(f, s.Gateway.collectorOptions()...).CountAlso(apps.Outcomes()), apps,
		exporter.StartedEmpty(opened.startedEmpty != nil))
	poller, err := s.Gateway.poller(st.gateway, w, registry, s.ServerMax, logger)
	if err != nil {
		st.closeListeners()
		return err
	}
	var polls exporter.GatewayPolls // the status page's; a nil *Poller must stay a nil interface
	if poller != nil {
		polls = poller
	}
	var ready atomic.Bool
	handlers, err := exporter.NewHandlers(exporter.Config{
		TelemetryPath: s.TelemetryPath,
		Ingester:      w,
		Forgetter:     w,
		Ready:         func() bool { return ready.Load() && w.Healthy() },
		MaxBodyBytes:  s.MaxBodyBytes,
		MaxInFlight:   s.MaxInFlight,
		Guard:         st.guard,
		Registry:      registry,
		Fleet:         f,
		Gateway:       polls,
		Logger:        logger,

		Applications:       apps,
		ApplicationSecrets: st.secrets,
	})
	if err != nil {
		st.closeListeners()
		return err
	}

	// Serve at once, so that probes see the exporter restoring (not ready)
	// rather than absent; webhooks are answered 503 until it is done.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- exporter.Serve(serveCtx, logger, s.timeouts(), s.endpoints(handlers, st)...) }()
	if err := w.Restore(ctx); err != nil {
		stopServing()
		<-served
		if ctx.Err() != nil {
			return nil // stopped while restoring
		}
		return err
	}
	ready.Store(true)
	logger.Info("Fleet restored; ready", "servers", f.Len())
	go w.RunSweeper(serveCtx)
	if poller != nil {
		go poller.Run(serveCtx)
	}
	return <-served
}

// openedStore is the fleet's writer on the store the flags chose.
type openedStore struct {
	writer *writer.Writer
	// closeStore releases the store after the writer is closed.
	closeStore func() error
	// startedEmpty is set when the embedded store started empty in place
	// of a damaged one.
	startedEmpty *embedded.EmptyStart
}

// errStopped is a start stopped by a signal while the store was opened.
var errStopped = errors.New("stopped")

// openWriter starts the fleet's writer on the store the flags choose: a
// shared Redis, the embedded store, or none.
func (s *serveCmd) openWriter(ctx context.Context, f *fleet.Fleet, logger *slog.Logger) (*openedStore, error) {
	opts := writer.Options{
		Decode: s.decodeOptions(),
		Limits: fleet.Limits{MaxServers: s.ServerMax, Retention: s.ServerRetention, StaleAfter: s.ServerStaleAfter},
		Logger: logger,
	}
	if s.RedisURL != "" {
		host, _ := os.Hostname()
		log, err := storage.OpenRedis(s.RedisURL, storage.RedisOptions{Prefix: s.RedisPrefix, Owner: host, Logger: logger,
			WaitReplicas: s.RedisWaitReplicas, WaitTimeout: s.RedisWaitTimeout})
		if err != nil {
			return nil, err
		}
		logger.Info("Fleet state is shared through Redis", "prefix", s.RedisPrefix)
		return &openedStore{writer: replica.New(f, log, opts, replica.Options{Timeout: s.RedisTimeout}),
			closeStore: log.Close}, nil
	}
	if s.StorageInMemory || s.StoragePath == "" {
		logger.Warn("Fleet state is kept in memory only: it is lost when the exporter stops")
		return &openedStore{writer: writer.New(f, nil, opts), closeStore: func() error { return nil }}, nil
	}
	store, err := s.openStore(ctx, logger)
	if err != nil {
		return nil, err
	}
	return &openedStore{writer: writer.New(f, store, opts), closeStore: store.Close, startedEmpty: store.StartedEmpty()}, nil
}

// decodeOptions bound webhook bodies alike for the fleet and the
// applications.
func (s *serveCmd) decodeOptions() event.DecodeOptions {
	return event.DecodeOptions{MaxEvents: s.MaxEvents, MaxFutureSkew: s.MaxFutureSkew}
}

// openStore opens the embedded store. Checking a large store on a slow
// disk takes as long as it takes, so a signal meanwhile ends the start
// (errStopped); the store is only read until it is checked, and the engine
// is crash-safe after.
func (s *serveCmd) openStore(ctx context.Context, logger *slog.Logger) (*embedded.Pebble, error) {
	type result struct {
		store *embedded.Pebble
		err   error
	}
	done := make(chan result, 1)
	go func() {
		store, err := embedded.Open(s.StoragePath, embedded.Options{
			Logger:             logger,
			StartEmptyOnDamage: s.StorageOnDamage == "start-empty",
			CheckRecord:        writer.CheckRecord,
			OnFatal: func(err error) {
				logger.Error("The store failed beyond repair; exiting (every acknowledged event is stored)", "err", err)
				os.Exit(1)
			},
		})
		done <- result{store, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		if ctx.Err() != nil { // the signal came as it opened
			return nil, errors.Join(errStopped, r.store.Close())
		}
		logger.Info("Fleet state is stored durably", "path", s.StoragePath)
		return r.store, nil
	case <-ctx.Done():
		return nil, errStopped
	}
}

func (s *serveCmd) timeouts() exporter.Timeouts {
	t := exporter.DefaultTimeouts
	t.ReadHeader, t.Read = s.ReadHeaderTimeout, s.ReadTimeout
	return t
}

// endpoints are the main listeners and, if asked for, the webhook's own.
func (s *serveCmd) endpoints(h *exporter.Handlers, st *startup) []exporter.Endpoint {
	eps := []exporter.Endpoint{{Handler: h.Main, Listeners: st.main, WebConfigFile: s.WebConfigFile}}
	if len(st.webhook) > 0 {
		eps = append(eps, exporter.Endpoint{Handler: h.Webhook, Listeners: st.webhook, WebConfigFile: s.WebhookWebConfigFile})
	}
	return eps
}

// defaultGOGC is the garbage collector's target when GOGC is not set. The
// exporter's live heap is small (a few MB for thousands of servers) while a
// burst of webhooks allocates fast; with Go's default of 100 it would collect
// many times a second. Measured with exporter/testdata/bench.sh at 64
// senders, 400 takes the durable ratio from 0.35–0.40 to 0.46–0.48 and the
// in-memory one from 0.61–0.88 to 0.94–0.95, for a heap at most five times
// the live one.
const defaultGOGC = 400

// tuneGC applies defaultGOGC unless the operator chose a GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
	}
}
