package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/alecthomas/kong"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/gateway"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
)

// Validate is the one place where serve's flags are checked, before
// anything starts; kong calls it after parsing, and main reports its error
// in one line. It checks each flag alone (its range, its syntax) and the
// flags against each other. What needs the outside world (files to read,
// addresses to bind) is checked by Run, still before the store is opened.
//
// A --storage.path counts only on the command line: one from the
// environment (the Docker image sets /data) gives way to a Redis URL.
func (s *serveCmd) Validate(kctx *kong.Context) error {
	if err := checkRanges(kctx.Selected()); err != nil {
		return err
	}
	if err := exporter.CheckTelemetryPath(s.TelemetryPath); err != nil {
		return fmt.Errorf("--web.telemetry-path: %w", err)
	}
	if _, err := s.networks(); err != nil {
		return err
	}
	pathGiven := slices.ContainsFunc(kctx.Path, func(p *kong.Path) bool { return p.Flag != nil && p.Flag.Name == "storage.path" })
	switch {
	case s.RedisURL != "" && (s.StorageInMemory || pathGiven):
		return errors.New("--storage.redis-url excludes --storage.path and --storage.in-memory")
	case s.RedisWaitReplicas > 0 && s.RedisWaitTimeout >= s.RedisTimeout:
		return errors.New("--storage.redis-wait-timeout must be shorter than --storage.redis-timeout")
	}
	return s.Gateway.validate()
}

// Flags of a number or a duration carry their range in their tags:
// min:"0" (a number) or min:"1ms" (a duration), and max likewise. Every one
// of serve has a min (TestEveryNumericFlagHasARange holds to it).
const (
	minTag = "min"
	maxTag = "max"
)

// checkRanges refuses the first numeric or duration flag of node outside
// the range its tags give, naming the flag, the value and the range.
func checkRanges(node *kong.Node) error {
	if node == nil {
		return nil
	}
	for _, f := range node.Flags {
		if err := checkRange(f); err != nil {
			return fmt.Errorf("--%s=%s: %w", f.Name, showValue(f.Target), err)
		}
	}
	return nil
}

// checkRange checks one flag against its min and max tags.
func checkRange(f *kong.Flag) error {
	for _, bound := range []string{minTag, maxTag} {
		limit := f.Tag.Get(bound)
		if limit == "" {
			continue
		}
		cmp, err := compare(f.Target, limit)
		if err != nil {
			return fmt.Errorf("bad %s tag %q: %w", bound, limit, err) // a mistake of this program
		}
		switch {
		case bound == minTag && cmp < 0 && isZero(limit):
			return errors.New("must not be negative")
		case bound == minTag && cmp < 0:
			return fmt.Errorf("must be at least %s", limit)
		case bound == maxTag && cmp > 0:
			return fmt.Errorf("must be at most %s", limit)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// isNumeric reports whether a flag's value is a number or a duration.
func isNumeric(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// compare compares a flag's value with limit, read as the value's type
// reads it: -1, 0 or 1.
func compare(v reflect.Value, limit string) (int, error) {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(limit)
		return cmpOf(v.Int(), int64(d)), err
	case v.CanInt():
		n, err := strconv.ParseInt(limit, 10, 64)
		return cmpOf(v.Int(), n), err
	case v.CanUint():
		n, err := strconv.ParseUint(limit, 10, 64)
		return cmpOf(v.Uint(), n), err
	case v.CanFloat():
		n, err := strconv.ParseFloat(limit, 64)
		return cmpOf(v.Float(), n), err
	}
	return 0, fmt.Errorf("a %s has no range", v.Type())
}

func cmpOf[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isZero reports whether a limit is zero, whatever its unit.
func isZero(limit string) bool {
	if d, err := time.ParseDuration(limit); err == nil {
		return d == 0
	}
	n, err := strconv.ParseFloat(limit, 64)
	return err == nil && n == 0
}

// showValue prints a flag's value as it would be given.
func showValue(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	return fmt.Sprint(v.Interface())
}

// validate checks what the poller's flags say without reading their files
// (Run reads them): a URL with its scheme and host, positive durations.
func (g *gatewayFlags) validate() error {
	if g.URL == "" {
		if g.KeyFile != "" || g.CAFile != "" || g.InsecureSkipVerify {
			return errors.New("--liveswitch.api-key-file, --liveswitch.api-ca-file and --liveswitch.api-insecure-skip-verify need --liveswitch.api-url")
		}
		return nil
	}
	cfg := gateway.Config{URL: g.URL, Interval: g.Interval, Timeout: g.Timeout}
	return cfg.Validate()
}
