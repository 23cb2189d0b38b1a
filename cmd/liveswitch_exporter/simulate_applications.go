package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// simulatedApplicationFlags add application webhooks to the simulation,
// and batching to every webhook.
type simulatedApplicationFlags struct {
	Applications int    `default:"0" help:"Simulated applications posting application webhooks (channel, client and connection events) beside the fleet's."`
	SecretsFile  string `name:"application-secrets-file" default:"" help:"Sign the application webhooks with the secrets of this YAML file (the exporter's --webhook.application-secrets-file); the applications are its first --applications ids."`
	Batch        int    `default:"1" help:"Post up to this many consecutive events (of the fleet, or of one application) in one request, as a JSON array (1: one event per request)."`
}

// appsPerServerEvent is how many application events come between two
// server events: calls are far busier than servers.
const appsPerServerEvent = 4

// Validate implements kong's hook: kong calls it on embedded structs.
func (f *simulatedApplicationFlags) Validate() error {
	switch {
	case f.Applications < 0:
		return errors.New("--applications must not be negative")
	case f.Batch < 1:
		return errors.New("--batch must be at least 1")
	case f.SecretsFile != "" && f.Applications == 0:
		return errors.New("--application-secrets-file needs --applications")
	}
	return nil
}

// applications returns the ids of the simulated applications, and the
// secrets that sign their webhooks: the first --applications ids of the
// secrets file, or made-up ones. The simulated Gateway lists the same ids.
func (f *simulatedApplicationFlags) applications(pushgateway bool) ([]string, map[string]string, error) {
	if f.Applications == 0 {
		return nil, nil, nil
	}
	if pushgateway {
		return nil, nil, errors.New("--pushgateway simulates the fleet only; drop --applications")
	}
	if f.SecretsFile == "" {
		return simulate.ApplicationIDs(f.Applications), nil, nil
	}
	raw, err := os.ReadFile(f.SecretsFile)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := appsig.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("--application-secrets-file: %w", err)
	}
	ids := slices.Sorted(maps.Keys(secrets))
	if len(ids) < f.Applications {
		return nil, nil, fmt.Errorf("--application-secrets-file holds %d applications, fewer than --applications=%d", len(ids), f.Applications)
	}
	return ids[:f.Applications], secrets, nil
}

// generator returns the generator of the applications apps, nil without
// any.
func (f *simulatedApplicationFlags) generator(apps []string, seed uint64) *simulate.AppGenerator {
	if len(apps) == 0 {
		return nil
	}
	return simulate.NewAppGenerator(simulate.AppConfig{Seed: seed, IDs: apps}, nil)
}

// source returns what to send: the fleet's events, interleaved with those
// of the applications when there are any.
func (f *simulatedApplicationFlags) source(fleet *simulate.Generator, apps *simulate.AppGenerator) simulate.Source {
	if apps == nil {
		return fleet
	}
	return simulate.Interleave(fleet, apps, appsPerServerEvent)
}
