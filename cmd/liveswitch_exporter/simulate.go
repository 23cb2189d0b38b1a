package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

type simulateCmd struct {
	Target        []string      `default:"http://localhost:9818/webhook" sep:"none" help:"Webhook URL of the exporter (with --pushgateway: the Pushgateway's base URL); repeat it to post to several replicas in turn, as a load balancer would."`
	Pushgateway   bool          `help:"Send each event as a PUT of the server's state to a Pushgateway group of its own (for comparison benchmarks)."`
	Token         string        `help:"Webhook token to send as a Bearer header (the content of the exporter's --webhook.token-file)."`
	Seed          uint64        `default:"1" help:"Seed of the fleet and of its life, for reproducible runs."`
	Deployments   int           `default:"2" help:"Number of LiveSwitch deployments."`
	Regions       []string      `default:"us-east,eu-west,ap-south" help:"Regions of the media servers."`
	MediaServers  int           `name:"media-servers" default:"3" help:"Media servers per deployment and region."`
	Gateways      int           `default:"2" help:"Gateways per deployment."`
	SIPConnectors int           `name:"sip-connectors" default:"1" help:"SIP connectors per deployment."`
	NoRecording   bool          `name:"no-recording" help:"Leave out the recording monitor, mover and muxer."`
	Scenario      string        `default:"healthy" enum:"healthy,stormy" help:"Life of the fleet: healthy (an incident now and then, by the clock) or stormy (restarts and flaps several times a minute per server, for load tests)."`
	Grow          bool          `help:"Start a new distinct server with every step after boot (load tests)."`
	Concurrency   int           `default:"4" help:"Concurrent senders."`
	Rate          float64       `default:"20" help:"Events per second over all senders; 0 is as fast as acknowledged."`
	Count         int           `default:"0" help:"Stop after this many events (0: no limit)."`
	Duration      time.Duration `default:"0s" help:"Stop after this long (0: no limit; stops on SIGINT)."`
	RetryFor      time.Duration `name:"retry-for" default:"5m" help:"Retry an event that got no answer, a 5xx or a 429 for up to this long, waits doubling from 1s to 30s (0: never retry)."`

	Gateway simulatedGatewayFlags `embed:""`

	Applications simulatedApplicationFlags `embed:""`
}

func (s *simulateCmd) Run(logger *slog.Logger) error {
	if s.RetryFor < 0 {
		return errors.New("--retry-for must not be negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	gen := simulate.NewGenerator(simulate.FleetConfig{
		Seed: s.Seed, Deployments: s.Deployments, Regions: s.Regions, MediaServers: s.MediaServers,
		Gateways: s.Gateways, SIPConnectors: s.SIPConnectors, Recording: !s.NoRecording,
		Scenario: simulate.Scenario(s.Scenario),
	}, nil)
	gen.Grow = s.Grow
	apps, secrets, err := s.Applications.applications(s.Pushgateway)
	if err != nil {
		return err
	}
	appGen := s.Applications.generator(apps, s.Seed)
	stopGateway, err := s.Gateway.serve(gen, apps, appGen, logger)
	if err != nil {
		return err
	}
	defer stopGateway()
	targets := make([]string, len(s.Target))
	for i, t := range s.Target {
		targets[i] = redactedURL(t)
	}
	logger.Info("Simulating a LiveSwitch fleet", "targets", targets, "servers", gen.Size(), "scenario", s.Scenario,
		"applications", len(apps), "concurrency", s.Concurrency, "rate", s.Rate, "count", s.Count, "duration", s.Duration, "retry_for", s.RetryFor)
	if s.Count == 0 && s.Duration == 0 {
		logger.Info("Running until stopped (Ctrl-C); the report follows")
	}
	rep := simulate.Run(ctx, s.Applications.source(gen, appGen), simulate.LoadConfig{
		Targets: s.Target, Concurrency: s.Concurrency, Rate: s.Rate, Count: s.Count, Duration: s.Duration,
		Pushgateway: s.Pushgateway, Header: s.header(),
		Batch: s.Applications.Batch, Secrets: secrets,
		Retry: simulate.Retry{For: s.RetryFor, First: simulate.DefaultRetry.First, Max: simulate.DefaultRetry.Max}, Logger: logger,
	})
	rep.Write(os.Stdout)
	for _, key := range slices.Sorted(maps.Keys(rep.Fleet)) {
		st := rep.Fleet[key]
		logger.Debug("Simulated server as acknowledged", "origin", st.Origin, "id", st.ID, "state", st.State)
	}
	if s.Gateway.ListenAddress != "" && ctx.Err() == nil {
		logger.Info("Events sent; the simulated Gateway's REST API serves the fleet as it stands until stopped")
		<-ctx.Done()
	}
	if rep.Acked() == 0 && rep.Sent > 0 {
		return fmt.Errorf("the target acknowledged none of %d events", rep.Sent)
	}
	return nil
}

// redactedURL is u without its query, which may hold a token, for the log.
func redactedURL(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

func (s *simulateCmd) header() http.Header {
	if s.Token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + s.Token}}
}
