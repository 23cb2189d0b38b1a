package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedisExcludesOtherStores: a Redis URL cannot be combined with another
// store on the command line, but a store path from the environment (the
// Docker image's) gives way to it.
func TestRedisExcludesOtherStores(t *testing.T) {
	const redis = "--storage.redis-url=redis://localhost:6379/0"
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		valid bool
	}{
		{"Redis alone", nil, []string{redis}, true},
		{"Redis and a path on the command line", nil, []string{redis, "--storage.path=/data"}, false},
		{"Redis and the default path on the command line", nil, []string{redis, "--storage.path=./data"}, false},
		{"Redis and in memory", nil, []string{redis, "--storage.in-memory"}, false},
		{"Redis and in memory from the environment", map[string]string{"LIVESWITCH_EXPORTER_STORAGE_IN_MEMORY": "true"}, []string{redis}, false},
		{"Redis and a path from the environment", map[string]string{"LIVESWITCH_EXPORTER_STORAGE_PATH": "/data"}, []string{redis}, true},
		{"Redis from the environment and a path from the environment", map[string]string{
			"LIVESWITCH_EXPORTER_STORAGE_PATH": "/data", "LIVESWITCH_EXPORTER_STORAGE_REDIS_URL": "redis://localhost:6379/0"}, nil, true},
		{"a path alone", nil, []string{"--storage.path=/data"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseWithEnv(t, tc.env, tc.args)
			if (err == nil) != tc.valid {
				t.Fatalf("valid: %t, want %t (err: %v)", err == nil, tc.valid, err)
			}
		})
	}
}

// badFlagSets are starts that must be refused before the store is opened:
// flags malformed or out of range, files that cannot be read, addresses
// that cannot be bound.
func badFlagSets(t *testing.T) [][]string {
	t.Helper()
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	const api = "--liveswitch.api-url=http://127.0.0.1:1/admin/api"
	return [][]string{
		{"--liveswitch.api-url=::::"}, {"--liveswitch.api-url=ftp://x"}, {"--liveswitch.api-url=http://"},
		{api, "--liveswitch.api-key-file=/nonexistent/key"}, {api, "--liveswitch.api-ca-file=" + notPEM},
		{api, "--liveswitch.api-interval=0s"}, {api, "--liveswitch.api-timeout=-1s"},
		{"--liveswitch.api-key-file=/etc/hostname"},
		{"--web.telemetry-path=metrics"}, {"--web.telemetry-path="}, {"--web.telemetry-path=/webhook"},
		{"--web.telemetry-path=/a b"}, {"--web.telemetry-path=/{"},
		{"--webhook.listen-address=not-an-address"}, {"--web.listen-address=256.1.1.1:9818"},
		{"--web.listen-address=" + busy.Addr().String()}, {"--webhook.listen-address=" + busy.Addr().String()},
		{"--webhook.max-body-bytes=-5"}, {"--webhook.max-events-per-request=-1"}, {"--webhook.max-future-skew=-5m"},
		{"--server.max=-3"}, {"--server.stale-after=-1h"}, {"--server.retention=-1s"}, {"--web.read-timeout=-1s"},
		{"--web.read-header-timeout=0s"}, {"--webhook.max-in-flight=-1"}, {"--storage.redis-timeout=0s"},
		{"--application.max=-1"}, {"--application.max-pending-connections=0"},
		{"--webhook.token-file=/nonexistent/token"}, {"--web.config.file=/nonexistent/web.yml"},
		{"--webhook.listen-address=127.0.0.1:0", "--webhook.web-config.file=/nonexistent/web.yml"},
		{"--webhook.application-secrets-file=/nonexistent/secrets.yml"},
		{"--webhook.allowed-cidrs=10.0.0.0/33"}, {"--web.trusted-proxies=nonsense"},
		{"--storage.on-damage=maybe"}, {"--log.level=loud"}, {"--server.max=many"},
	}
}

// TestRefusedStartWritesNothing starts the exporter with each bad flag set
// on stores at rest and killed under load (whose write-ahead log a start
// replays into a new sorted file): each start is refused with one line and
// no panic, and leaves every byte of the store as it was.
func TestRefusedStartWritesNothing(t *testing.T) {
	for _, ending := range []string{"stopped cleanly", "killed under load"} {
		t.Run(ending, func(t *testing.T) {
			dir := storeEndingWith(t, ending)
			before := digest(t, dir)
			for _, bad := range badFlagSets(t) {
				code, out := runToExit(t, append([]string{"--storage.path=" + dir}, bad...)...)
				checkOneLineRefusal(t, strings.Join(bad, " "), code, out)
				if after := digest(t, dir); after != before {
					t.Errorf("%v: the refused start changed the store's files", bad)
					dir = storeEndingWith(t, ending)
					before = digest(t, dir)
				}
			}
		})
	}
}
