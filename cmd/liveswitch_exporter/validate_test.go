package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// numericServeFlags returns serve's flags of a number or a duration.
func numericServeFlags(t *testing.T) []*kong.Flag {
	t.Helper()
	global, commands := modelFlags(t)
	var out []*kong.Flag
	for _, f := range append(global, commands["serve"]...) {
		if isNumeric(f.Target) {
			out = append(out, f)
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d numeric flags found", len(out))
	}
	return out
}

// TestEveryNumericFlagHasARange: each flag of serve that takes a number or
// a duration says its range (a min tag), so that checkRanges checks it.
func TestEveryNumericFlagHasARange(t *testing.T) {
	for _, f := range numericServeFlags(t) {
		if f.Tag.Get(minTag) == "" {
			t.Errorf("--%s has no %s tag: give it its range", f.Name, minTag)
		}
	}
}

// outside returns the value just outside limit, below it (step -1) or above
// it (step 1), written as the flag's type reads it.
func outside(t *testing.T, f *kong.Flag, limit string, step int64) string {
	t.Helper()
	if f.Target.Type() == durationType {
		d, err := time.ParseDuration(limit)
		if err != nil {
			t.Fatal(err)
		}
		return (d + time.Duration(step)).String()
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(n+step, 10)
}

// TestRangesRefuseWhatIsOutside sets every numeric and duration flag of
// serve just outside its range, on the command line and from its
// environment variable: the start is refused naming the flag; its limit
// itself is accepted.
func TestRangesRefuseWhatIsOutside(t *testing.T) {
	for _, f := range numericServeFlags(t) {
		for _, bound := range []struct {
			tag  string
			step int64
		}{{minTag, -1}, {maxTag, 1}} {
			limit := f.Tag.Get(bound.tag)
			if limit == "" {
				continue
			}
			bad := outside(t, f, limit, bound.step)
			if _, _, err := parseWithEnv(t, nil, []string{"--" + f.Name + "=" + bad}); err == nil || !strings.Contains(err.Error(), "--"+f.Name+"=") {
				t.Errorf("--%s=%s (%s %s): %v, want a refusal naming the flag", f.Name, bad, bound.tag, limit, err)
			}
			env := map[string]string{f.Envs[0]: bad}
			if _, _, err := parseWithEnv(t, env, nil); err == nil || !strings.Contains(err.Error(), "--"+f.Name+"=") {
				t.Errorf("%s=%s: %v, want a refusal naming the flag", f.Envs[0], bad, err)
			}
			if _, _, err := parseWithEnv(t, nil, []string{"--" + f.Name + "=" + limit}); err != nil {
				t.Errorf("--%s=%s, its %s, refused: %v", f.Name, limit, bound.tag, err)
			}
		}
	}
}

// TestFlagRefusals: what the issue found accepted or panicking is refused,
// in words that name the flag and the rule.
func TestFlagRefusals(t *testing.T) {
	for _, tc := range []struct{ arg, says string }{
		{"--webhook.max-body-bytes=-5", "--webhook.max-body-bytes=-5: must be at least 1"},
		{"--webhook.max-events-per-request=-1", "--webhook.max-events-per-request=-1: must be at least 1"},
		{"--webhook.max-future-skew=-5m", "--webhook.max-future-skew=-5m0s: must not be negative"},
		{"--server.max=-3", "--server.max=-3: must not be negative"},
		{"--server.stale-after=-1h", "--server.stale-after=-1h0m0s: must not be negative"},
		{"--web.read-timeout=-1s", "--web.read-timeout=-1s: must be at least 1ms"},
		{"--liveswitch.api-interval=0s", "--liveswitch.api-interval=0s: must be at least 100ms"},
		{"--liveswitch.api-timeout=-1s", "--liveswitch.api-timeout=-1s: must be at least 1ms"},
		{"--application.max-pending-connections=0", "--application.max-pending-connections=0: must be at least 1"},
		{"--web.telemetry-path=metrics", `--web.telemetry-path: telemetry path "metrics": must start with /`},
		{"--web.telemetry-path=", "must start with /"},
		{"--web.telemetry-path=/-/ready", "conflicts"},
		{"--liveswitch.api-url=ftp://x", "--liveswitch.api-url must start with http:// or https://"},
		{"--webhook.allowed-cidrs=10.0.0.0/33", "--webhook.allowed-cidrs"},
	} {
		_, _, err := parseWithEnv(t, nil, []string{tc.arg})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.arg, err, tc.says)
		}
	}
}

// TestBadFlagIsOneLine: a refused flag prints one line saying why and one
// pointing to --help, not the whole usage; the top-level help shows serve's
// flags, serve being the default command.
func TestBadFlagIsOneLine(t *testing.T) {
	code, out := runToExit(t, "--server.max=-3", "--storage.in-memory")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code == 0 || len(lines) != 2 || !strings.Contains(lines[0], "error: ") || !strings.Contains(lines[0], "--server.max") ||
		!strings.Contains(lines[1], "--help") {
		t.Errorf("a bad flag: exit %d, want an error line and a hint to --help:\n%s", code, out)
	}
	help, err := exec.Command(binary, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--storage.path", "--webhook.max-body-bytes", "--liveswitch.api-url", "simulate"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("--help does not show %s:\n%s", want, help)
		}
	}
}
