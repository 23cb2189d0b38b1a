package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/gateway"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

// gatewayFlags configure the poller of the Gateway's REST API; without a URL
// the exporter lives on webhooks alone, as before.
type gatewayFlags struct {
	URL                string        `name:"liveswitch.api-url" help:"Base URL of the LiveSwitch Gateway's admin REST API (e.g. http://gateway:9090/admin/api); empty: webhooks only."`
	KeyFile            string        `name:"liveswitch.api-key-file" help:"File holding the API key sent as X-API-Key (created in the LiveSwitch Console); never logged."`
	Interval           time.Duration `name:"liveswitch.api-interval" default:"15s" min:"100ms" help:"How often to poll the Gateway's REST API."`
	Timeout            time.Duration `name:"liveswitch.api-timeout" default:"5s" min:"1ms" help:"Time one request to the Gateway's REST API may take."`
	CAFile             string        `name:"liveswitch.api-ca-file" help:"PEM file of CA certificates to trust besides the system's, for a Gateway whose certificate a private CA issued."`
	InsecureSkipVerify bool          `name:"liveswitch.api-insecure-skip-verify" help:"Accept any TLS certificate from the Gateway (tests only; logged as a warning)."`
}

// collectorOptions export the API's series only when the API is on.
func (g *gatewayFlags) collectorOptions() []collector.CollectorOption {
	if g.URL == "" {
		return nil
	}
	return []collector.CollectorOption{collector.WithGatewayAPI(nil)}
}

// config reads the files the poller's flags name and checks the whole
// configuration, so that a bad one refuses the start before the store is
// opened; nil when the API is off.
func (g *gatewayFlags) config(logger *slog.Logger) (*gateway.Config, error) {
	if g.URL == "" {
		return nil, nil
	}
	cfg := &gateway.Config{URL: g.URL, Interval: g.Interval, Timeout: g.Timeout, InsecureSkipVerify: g.InsecureSkipVerify, Logger: logger}
	var err error
	if g.KeyFile == "" {
		logger.Warn("No --liveswitch.api-key-file: requests to the Gateway's REST API carry no X-API-Key")
	} else if cfg.Key, err = readSecretFile(g.KeyFile, "--liveswitch.api-key-file"); err != nil {
		return nil, err
	}
	if g.CAFile != "" {
		if cfg.CAPEM, err = os.ReadFile(g.CAFile); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("reading --liveswitch.api-ca-file: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if g.InsecureSkipVerify {
		logger.Warn("The Gateway's TLS certificate is not verified (--liveswitch.api-insecure-skip-verify): anyone on the path can read the API key; use --liveswitch.api-ca-file instead")
	}
	return cfg, nil
}

// poller returns the poller of cfg writing to w, or nil when the API is
// off (cfg nil).
func (g *gatewayFlags) poller(cfg *gateway.Config, w *writer.Writer, reg prometheus.Registerer, maxServers int, logger *slog.Logger) (*gateway.Poller, error) {
	if cfg == nil {
		return nil, nil
	}
	c := *cfg
	c.MaxMediaServers, c.Logger = maxServers, logger
	return gateway.New(c, w, reg)
}
