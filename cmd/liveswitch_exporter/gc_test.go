package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGCKeepsTheOperatorsGOGC(t *testing.T) {
	initial := debug.SetGCPercent(100)
	defer debug.SetGCPercent(initial)
	for _, tc := range []struct {
		env  string // "" leaves GOGC unset
		want int
	}{{"", defaultGOGC}, {"50", 100}} {
		debug.SetGCPercent(100)
		if tc.env == "" {
			if old, ok := os.LookupEnv("GOGC"); ok {
				os.Unsetenv("GOGC")
				defer os.Setenv("GOGC", old)
			}
		} else {
			t.Setenv("GOGC", tc.env) // the runtime read it at start; tuneGC must leave it alone
		}
		tuneGC()
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: GC percent %d, want %d", tc.env, got, tc.want)
		}
	}
}
