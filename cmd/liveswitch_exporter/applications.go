package main

import (
	"log/slog"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// applicationFlags configure the application webhooks (channel, client and
// connection events), which /webhook takes beside the server webhooks.
type applicationFlags struct {
	SecretsFile string `name:"webhook.application-secrets-file" default:"" help:"YAML map of applicationId: shared secret; when set, every application webhook must carry a valid X-ApplicationSignature. Re-read when it changes."`
	Max         int    `name:"application.max" default:"1000" min:"0" help:"Most applications counted; events of further applications are refused (0: no limit)."`
	MaxPending  int    `name:"application.max-pending-connections" default:"100000" min:"1" max:"2147483647" help:"Most connections held between their initializing and their connected, to time their setup; when full, the oldest is dropped."`
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

// tracker returns the counter of application events.
func (f *applicationFlags) tracker(decode event.DecodeOptions, logger *slog.Logger) *applications.Tracker {
	return applications.New(applications.Options{
		Decode: decode, MaxApplications: f.Max, MaxPending: f.MaxPending, Logger: logger,
	})
}
