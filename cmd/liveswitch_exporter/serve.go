package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
)

type serveCmd struct {
	ListenAddress []string `name:"web.listen-address" default:":9818" help:"Addresses to listen on for webhooks and scrapes."`
	TelemetryPath string   `name:"web.telemetry-path" default:"/metrics" help:"Path under which to expose metrics."`
	WebConfigFile string   `name:"web.config.file" default:"" help:"Path to an exporter-toolkit web configuration file (TLS, basic auth)."`

	MaxBodyBytes  int64         `name:"webhook.max-body-bytes" default:"1048576" help:"Largest webhook body accepted, in bytes."`
	MaxEvents     int           `name:"webhook.max-events-per-request" default:"1000" help:"Most events accepted in one batched webhook."`
	MaxFutureSkew time.Duration `name:"webhook.max-future-skew" default:"1h" help:"How far ahead of this exporter's clock an event may be stamped."`
}

func (s *serveCmd) Run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("Starting "+name, "version", version.Info(), "build_context", version.BuildContext())

	fleet := collector.NewFleet()
	logger.Warn("Fleet state is kept in memory only: it is lost when the exporter stops")
	writer := collector.NewWriter(fleet, nil, collector.WriterOptions{
		Decode: collector.DecodeOptions{MaxEvents: s.MaxEvents, MaxFutureSkew: s.MaxFutureSkew},
		Logger: logger,
	})
	defer writer.Close()

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collector.NewCollector(fleet),
		versioncollector.NewCollector("liveswitch_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var ready atomic.Bool
	handler, err := exporter.NewHandler(exporter.Config{
		TelemetryPath: s.TelemetryPath,
		Ingester:      writer,
		Ready:         ready.Load,
		MaxBodyBytes:  s.MaxBodyBytes,
		Registry:      registry,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	if err := writer.Restore(ctx); err != nil {
		return err
	}
	ready.Store(true)
	systemd := false
	return exporter.Serve(ctx, handler, &web.FlagConfig{
		WebListenAddresses: &s.ListenAddress,
		WebSystemdSocket:   &systemd,
		WebConfigFile:      &s.WebConfigFile,
	}, logger)
}
