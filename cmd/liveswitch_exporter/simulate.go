package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

type simulateCmd struct {
	Target        string        `default:"http://localhost:9818/webhook" help:"Webhook URL of the exporter (with --pushgateway: the Pushgateway's base URL)."`
	Pushgateway   bool          `help:"Send each event as a PUT of the server's state to a Pushgateway group of its own (for comparison benchmarks)."`
	Token         string        `help:"Webhook token to send as a Bearer header (the content of the exporter's --webhook.token-file)."`
	Seed          uint64        `default:"1" help:"Seed of the fleet and of its life, for reproducible runs."`
	Deployments   int           `default:"2" help:"Number of LiveSwitch deployments."`
	Regions       []string      `default:"us-east,eu-west,ap-south" help:"Regions of the media servers."`
	MediaServers  int           `name:"media-servers" default:"3" help:"Media servers per deployment and region."`
	Gateways      int           `default:"2" help:"Gateways per deployment."`
	SIPConnectors int           `name:"sip-connectors" default:"1" help:"SIP connectors per deployment."`
	NoRecording   bool          `name:"no-recording" help:"Leave out the recording monitor, mover and muxer."`
	Grow          bool          `help:"Start a new distinct server with every step after boot (load tests)."`
	Concurrency   int           `default:"4" help:"Concurrent senders."`
	Rate          float64       `default:"20" help:"Events per second over all senders; 0 is as fast as acknowledged."`
	Count         int           `default:"0" help:"Stop after this many events (0: no limit)."`
	Duration      time.Duration `default:"0s" help:"Stop after this long (0: no limit; stops on SIGINT)."`

	Gateway simulatedGatewayFlags `embed:""`

	Applications simulatedApplicationFlags `embed:""`
}

func (s *simulateCmd) Run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gen := simulate.NewGenerator(simulate.FleetConfig{
		Seed: s.Seed, Deployments: s.Deployments, Regions: s.Regions, MediaServers: s.MediaServers,
		Gateways: s.Gateways, SIPConnectors: s.SIPConnectors, Recording: !s.NoRecording,
	}, nil)
	gen.Grow = s.Grow
	stopGateway, err := s.Gateway.serve(gen, logger)
	if err != nil {
		return err
	}
	defer stopGateway()
	logger.Info("Simulating a LiveSwitch fleet", "target", s.Target, "servers", gen.Size(),
		"concurrency", s.Concurrency, "rate", s.Rate, "count", s.Count, "duration", s.Duration)
	source, secrets, err := s.Applications.source(gen, s.Seed, s.Pushgateway)
	if err != nil {
		return err
	}
	rep := simulate.Run(ctx, source, simulate.LoadConfig{
		Target: s.Target, Concurrency: s.Concurrency, Rate: s.Rate, Count: s.Count, Duration: s.Duration,
		Pushgateway: s.Pushgateway, Header: s.header(),
		Batch: s.Applications.Batch, Secrets: secrets,
	})
	rep.Write(os.Stdout)
	if s.Gateway.ListenAddress != "" && ctx.Err() == nil {
		logger.Info("Events sent; the simulated Gateway's REST API serves the fleet as it stands until stopped")
		<-ctx.Done()
	}
	if rep.Acked() == 0 && rep.Sent > 0 {
		return fmt.Errorf("the target acknowledged none of %d events", rep.Sent)
	}
	return nil
}

func (s *simulateCmd) header() http.Header {
	if s.Token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + s.Token}}
}
