package main

import "testing"

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
