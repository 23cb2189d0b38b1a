package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// simulatedGatewayFlags make `simulate` also serve its fleet's Gateway
// REST API, so that --liveswitch.api-url can be tried without LiveSwitch.
type simulatedGatewayFlags struct {
	ListenAddress string  `name:"api-listen-address" help:"Also serve the simulated fleet's Gateway REST API under /admin/api on this address (e.g. 127.0.0.1:9090), until stopped."`
	KeyFile       string  `name:"api-key-file" help:"File holding the X-API-Key the simulated Gateway requires (default: none required)."`
	PascalCase    bool    `name:"api-pascal-case" help:"Answer with PascalCase member names (Id, UsedCapacity) instead of camelCase."`
	Load          float64 `name:"api-load" default:"0.5" help:"Mean used capacity of the simulated media servers, from 0 to 1."`
}

// serve starts the simulated Gateway's API if asked to, listing apps (or,
// with none, the three of simulate.ApplicationIDs), counting what their
// webhooks (appGen, when not nil) left active; stop ends it.
func (f *simulatedGatewayFlags) serve(gen *simulate.Generator, apps []string, appGen *simulate.AppGenerator, logger *slog.Logger) (stop func(), err error) {
	if f.ListenAddress == "" {
		return func() {}, nil
	}
	key := ""
	if f.KeyFile != "" {
		if key, err = readSecretFile(f.KeyFile, "--api-key-file"); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", f.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("--api-listen-address: %w", err)
	}
	cfg := simulate.GatewayConfig{Key: key, PascalCase: f.PascalCase, Load: f.Load, Applications: apps}
	if appGen != nil {
		cfg.Live = appGen.Live
	}
	srv := &http.Server{
		Handler:           simulate.NewGateway(gen, cfg),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("The simulated Gateway's REST API stopped", "err", err)
		}
	}()
	logger.Info("Listening on", "address", l.Addr().String(), "serving", "the simulated Gateway's REST API under /admin/api",
		"api_key_required", key != "", "pascal_case", f.PascalCase)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// readSecretFile reads a token or key from a file, trimmed of white space.
// Its errors name the flag, never the path or the content.
func readSecretFile(path, flag string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("reading %s: %w", flag, err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", flag)
	}
	return secret, nil
}
