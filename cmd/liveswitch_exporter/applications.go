package main

import (
	"log/slog"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/redisstate"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// applicationFlags configure the application webhooks (channel, client and
// connection events), which /webhook takes beside the server webhooks.
type applicationFlags struct {
	SecretsFile   string        `name:"webhook.application-secrets-file" default:"" help:"YAML map of applicationId: shared secret; when set, every application webhook must carry a valid X-ApplicationSignature. Re-read when it changes."`
	Max           int           `name:"application.max" default:"1000" min:"0" help:"Most applications counted; events of further applications are refused until one is idle for --application.idle-after (0: no limit)."`
	IdleAfter     time.Duration `name:"application.idle-after" default:"24h" min:"0" help:"An application without an event for this long, that the Gateway does not list, gives up its slot and its series (0: never)."`
	MaxEventAge   time.Duration `name:"application.max-event-age" default:"1h" min:"1m" max:"168h" help:"Application events stamped longer ago are refused; events are remembered this long, so that a retry or a replay counts once."`
	MaxRemembered int           `name:"application.max-remembered-events" default:"1000000" min:"0" help:"Most application events remembered to count retries and replays once, spread over the minutes of --application.max-event-age (0: no limit)."`
	MaxPending    int           `name:"application.max-pending-connections" default:"100000" min:"1" max:"2147483647" help:"Most connections held between their initializing (or connected) and their closed or failed, to time their setup and duration; when full, the one closest to expiring is dropped."`
	MaxChannels   int           `name:"application.max-pending-channels" default:"100000" min:"1" max:"2147483647" help:"Most channels held between their activated and their deactivated, to time them and count their clients; when full, the one closest to expiring is dropped."`
	MaxClients    int           `name:"application.max-pending-clients" default:"100000" min:"1" max:"2147483647" help:"Most clients held between their registered and their unregistered, to count them; when full, the one closest to expiring is dropped."`
	MaxOpen       time.Duration `name:"application.max-open-duration" default:"12h" min:"1m" help:"Longest a connected connection, an active channel or a registered client is held without its end; then it is dropped (a connection waits at most 5m for its connected)."`
}

// openSecrets reads the secrets file, so that a bad one refuses the start
// before the store is opened; without one, it warns that application
// webhooks are unverified.
func (f *applicationFlags) openSecrets(logger *slog.Logger) (*appsig.File, error) {
	if f.SecretsFile == "" {
		logger.Warn("Application webhooks are unverified: anyone who can post to the webhook can fake call metrics; set --webhook.application-secrets-file")
		return nil, nil
	}
	file, err := appsig.Open(f.SecretsFile, logger)
	if err != nil {
		return nil, err
	}
	logger.Info("Application webhooks must be signed", "path", f.SecretsFile, "applications", file.Len())
	return file, nil
}

// options are the Tracker's options of the flags, with the fleet's
// Gateway view telling which applications the Gateway lists.
func (f *applicationFlags) options(decode event.DecodeOptions, fl *fleet.Fleet, logger *slog.Logger) applications.Options {
	return applications.Options{
		Decode: decode, MaxApplications: f.Max, IdleAfter: f.IdleAfter, MaxEventAge: f.MaxEventAge, MaxRemembered: f.MaxRemembered,
		MaxPending: f.MaxPending, MaxChannels: f.MaxChannels, MaxClients: f.MaxClients, OpenTTL: f.MaxOpen,
		GatewayApplications: func() []string { return gatewayApplications(fl) },
		Logger:              logger,
	}
}

// gatewayApplications are the applications the Gateway's last successful
// poll listed.
func gatewayApplications(fl *fleet.Fleet) []string {
	view := fl.Snapshot().Gateway
	if view == nil {
		return nil
	}
	ids := make([]string, len(view.Applications))
	for i, a := range view.Applications {
		ids[i] = a.ID
	}
	return ids
}

// applicationState is where the tracker's tables and memory of events
// live: nil state for this process's memory.
type applicationState struct {
	state callstate.State
	close func() error
}

// applicationState shares the tracker's state through the fleet's Redis
// when there is one (under its prefix and redisstate.KeySuffix), so that
// replicas pair ends and count events once alike.
func (s *serveCmd) applicationState(limits callstate.Limits, logger *slog.Logger) (applicationState, error) {
	if s.RedisURL == "" {
		return applicationState{close: func() error { return nil }}, nil
	}
	client, err := storage.NewRedisClient(s.RedisURL)
	if err != nil {
		return applicationState{}, err
	}
	logger.Info("Application state (pending connections, channels, clients, events counted) is shared through Redis",
		"prefix", s.RedisPrefix+redisstate.KeySuffix)
	return applicationState{state: redisstate.New(client, s.RedisPrefix+redisstate.KeySuffix, limits, s.RedisTimeout), close: client.Close}, nil
}
