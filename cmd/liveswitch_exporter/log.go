package main

import (
	"log/slog"
	"os"

	"github.com/prometheus/common/promslog"
)

// logFlags are the Prometheus-conventional logging flags.
type logFlags struct {
	Level  string `default:"info" enum:"debug,info,warn,error" help:"Only log messages with the given severity or above (${enum})."`
	Format string `default:"logfmt" enum:"logfmt,json" help:"Output format of log messages (${enum})."`
}

func (f logFlags) logger() *slog.Logger {
	cfg := &promslog.Config{Level: promslog.NewLevel(), Format: promslog.NewFormat(), Writer: os.Stderr}
	// The values were validated by kong's enum, so Set cannot fail.
	_ = cfg.Level.Set(f.Level)
	_ = cfg.Format.Set(f.Format)
	return promslog.New(cfg)
}
