package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/replica"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

type serveCmd struct {
	ListenAddress []string `name:"web.listen-address" default:":9818" help:"Addresses to listen on for webhooks and scrapes."`
	TelemetryPath string   `name:"web.telemetry-path" default:"/metrics" help:"Path under which to expose metrics."`
	WebConfigFile string   `name:"web.config.file" default:"" help:"Path to an exporter-toolkit web configuration file (TLS, basic auth)."`

	ReadHeaderTimeout time.Duration `name:"web.read-header-timeout" default:"5s" help:"Time a client has to send the request headers."`
	ReadTimeout       time.Duration `name:"web.read-timeout" default:"30s" help:"Time a client has to send the whole request, body included."`
	TrustedProxies    []string      `name:"web.trusted-proxies" help:"Proxies (CIDRs or addresses) whose X-Forwarded-For is believed."`

	WebhookListenAddress []string `name:"webhook.listen-address" help:"Extra listeners serving only the webhook, the delete API and the probes, with their own web config (e.g. TLS without client certificates or basic auth, which LiveSwitch cannot present)."`
	WebhookWebConfigFile string   `name:"webhook.web-config.file" default:"" help:"exporter-toolkit web configuration of --webhook.listen-address."`
	WebhookTokenFile     string   `name:"webhook.token-file" default:"" help:"File holding the token LiveSwitch must send (Bearer header or ?token=)."`
	WebhookAllowedCIDRs  []string `name:"webhook.allowed-cidrs" help:"Source networks allowed to post webhooks (default: any)."`
	MaxInFlight          int      `name:"webhook.max-in-flight" default:"256" help:"Most webhook requests served at once; more are answered 503 (0: no limit)."`

	MaxBodyBytes  int64         `name:"webhook.max-body-bytes" default:"1048576" help:"Largest webhook body accepted, in bytes."`
	MaxEvents     int           `name:"webhook.max-events-per-request" default:"1000" help:"Most events accepted in one batched webhook."`
	MaxFutureSkew time.Duration `name:"webhook.max-future-skew" default:"5m" help:"How far ahead of this exporter's clock an event may be stamped."`

	StoragePath       string        `name:"storage.path" default:"./data" help:"Directory of the embedded fleet store; empty keeps the fleet in memory only."`
	StorageOnDamage   string        `name:"storage.on-damage" default:"refuse" enum:"refuse,start-empty" help:"What to do with a damaged store: refuse to start (exit non-zero), or move it aside and start with an empty fleet."`
	StorageInMemory   bool          `name:"storage.in-memory" help:"Keep the fleet in memory only (lost on exit): for tests and demos."`
	RedisURL          string        `name:"storage.redis-url" help:"Share the fleet with other replicas through this Redis (redis://[:password@]host:port/db, rediss:// for TLS, ?master_name=NAME&addr=... for Sentinel); excludes --storage.path."`
	RedisPrefix       string        `name:"storage.redis-prefix" default:"liveswitch_exporter:" help:"Prefix of the Redis keys, so that several LiveSwitch deployments can share one Redis."`
	RedisTimeout      time.Duration `name:"storage.redis-timeout" default:"2s" help:"Longest a webhook waits for the shared Redis (append and fold); an append Redis runs later is refused by Redis itself."`
	RedisWaitReplicas int           `name:"storage.redis-wait-replicas" default:"0" help:"Acknowledge a webhook only once this many Redis replicas have its entry (Redis WAIT); fewer in time is a 503 (0: do not wait)."`
	RedisWaitTimeout  time.Duration `name:"storage.redis-wait-timeout" default:"500ms" help:"Longest wait for --storage.redis-wait-replicas; shorter than --storage.redis-timeout."`

	ServerRetention  time.Duration `name:"server.retention" default:"1h" help:"Forget a stopped server this long after it stopped (0: never)."`
	ServerStaleAfter time.Duration `name:"server.stale-after" default:"0s" help:"Forget a server of any state after this long without an event (0: never)."`
	ServerMax        int           `name:"server.max" default:"10000" help:"Most servers tracked; when full, a new server evicts the one stopped longest ago, or is refused (0: no limit)."`

	Gateway gatewayFlags `embed:""`

	Applications applicationFlags `embed:""`
}

// Validate rejects flags that contradict each other; kong calls it after
// parsing, so the error comes with the usage. A --storage.path counts only
// on the command line: one from the environment (the Docker image sets
// /data) gives way to a Redis URL.
func (s *serveCmd) Validate(kctx *kong.Context) error {
	pathGiven := slices.ContainsFunc(kctx.Path, func(p *kong.Path) bool { return p.Flag != nil && p.Flag.Name == "storage.path" })
	if s.RedisURL != "" && (s.StorageInMemory || pathGiven) {
		return errors.New("--storage.redis-url excludes --storage.path and --storage.in-memory")
	}
	if s.RedisWaitReplicas < 0 || s.RedisTimeout <= 0 {
		return errors.New("--storage.redis-wait-replicas must be 0 or more and --storage.redis-timeout above 0")
	}
	if s.RedisWaitReplicas > 0 && s.RedisWaitTimeout >= s.RedisTimeout {
		return errors.New("--storage.redis-wait-timeout must be shorter than --storage.redis-timeout")
	}
	return s.Gateway.validate()
}

func (s *serveCmd) Run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go exitOnSecondSignal(ctx, logger)
	logger.Info("Starting "+name, "version", version.Info(), "build_context", version.BuildContext())
	tuneGC()

	// Everything that can refuse a start is checked before the store is
	// opened, so that a start refused for a flag leaves the store alone.
	guard, err := s.writeGuard()
	if err != nil {
		return err
	}
	if err := s.checkWebConfigs(); err != nil {
		return err
	}
	secrets, err := s.Applications.openSecrets(logger)
	if err != nil {
		return err
	}
	f := fleet.New()
	w, closeStore, err := s.openWriter(f, logger)
	if err != nil {
		return err
	}
	err = s.serve(ctx, logger, f, w, guard, secrets)
	w.Close()
	return errors.Join(err, closeStore())
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
func (s *serveCmd) serve(ctx context.Context, logger *slog.Logger, f *fleet.Fleet, w *writer.Writer, guard exporter.WriteGuard,
	secrets *appsig.File) error {
	if guard.Token == "" {
		logger.Warn("The webhook is unauthenticated: anyone who can reach it can change the fleet; set --webhook.token-file")
	}
	apps := s.Applications.tracker(s.decodeOptions(), logger)
	registry := exporter.NewRegistry(collector.NewCollector(f, s.Gateway.collectorOptions()...).CountAlso(apps.Outcomes()), apps)
	poller, err := s.Gateway.poller(w, registry, s.ServerMax, logger)
	if err != nil {
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
		Guard:         guard,
		Registry:      registry,
		Fleet:         f,
		Gateway:       polls,
		Logger:        logger,

		Applications:       apps,
		ApplicationSecrets: secrets,
	})
	if err != nil {
		return err
	}

	// Serve at once, so that probes see the exporter restoring (not ready)
	// rather than absent; webhooks are answered 503 until it is done.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- exporter.Serve(serveCtx, logger, s.timeouts(), s.endpoints(handlers)...) }()
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

// openWriter starts the fleet's writer on the store the flags choose: a
// shared Redis, the embedded store, or none. closeStore releases the store
// after the writer is closed.
func (s *serveCmd) openWriter(f *fleet.Fleet, logger *slog.Logger) (w *writer.Writer, closeStore func() error, err error) {
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
			return nil, nil, err
		}
		logger.Info("Fleet state is shared through Redis", "prefix", s.RedisPrefix)
		return replica.New(f, log, opts, replica.Options{Timeout: s.RedisTimeout}), log.Close, nil
	}
	store, err := s.openStore(logger)
	if err != nil {
		return nil, nil, err
	}
	if store == nil {
		return writer.New(f, nil, opts), func() error { return nil }, nil
	}
	return writer.New(f, store, opts), store.Close, nil
}

// decodeOptions bound webhook bodies alike for the fleet and the
// applications.
func (s *serveCmd) decodeOptions() event.DecodeOptions {
	return event.DecodeOptions{MaxEvents: s.MaxEvents, MaxFutureSkew: s.MaxFutureSkew}
}

// openStore opens the embedded store, or returns nil for a fleet kept in
// memory only.
func (s *serveCmd) openStore(logger *slog.Logger) (storage.Store, error) {
	if s.StorageInMemory || s.StoragePath == "" {
		logger.Warn("Fleet state is kept in memory only: it is lost when the exporter stops")
		return nil, nil
	}
	store, err := storage.Open(s.StoragePath, storage.Options{
		Logger:             logger,
		StartEmptyOnDamage: s.StorageOnDamage == "start-empty",
		OnFatal: func(err error) {
			logger.Error("The store failed beyond repair; exiting (every acknowledged event is stored)", "err", err)
			os.Exit(1)
		},
	})
	if err != nil {
		return nil, err
	}
	logger.Info("Fleet state is stored durably", "path", s.StoragePath)
	return store, nil
}

func (s *serveCmd) timeouts() exporter.Timeouts {
	t := exporter.DefaultTimeouts
	t.ReadHeader, t.Read = s.ReadHeaderTimeout, s.ReadTimeout
	return t
}

// endpoints are the main listeners and, if asked for, the webhook's own.
func (s *serveCmd) endpoints(h *exporter.Handlers) []exporter.Endpoint {
	systemd := false
	eps := []exporter.Endpoint{{Handler: h.Main, Flags: &web.FlagConfig{
		WebListenAddresses: &s.ListenAddress, WebSystemdSocket: &systemd, WebConfigFile: &s.WebConfigFile,
	}}}
	if len(s.WebhookListenAddress) > 0 {
		eps = append(eps, exporter.Endpoint{Handler: h.Webhook, Flags: &web.FlagConfig{
			WebListenAddresses: &s.WebhookListenAddress, WebSystemdSocket: &systemd, WebConfigFile: &s.WebhookWebConfigFile,
		}})
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
