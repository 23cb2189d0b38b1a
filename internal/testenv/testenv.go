// Package testenv holds what the tests of several packages need from the
// machine they run on.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of an external program a test needs (promtool,
// prometheus, redis-server, ...). On CI (CI set) a missing tool fails the
// test, since .ci/run installs it; elsewhere the test is skipped with a hint.
func RequireTool(t testing.TB, tool, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/run must install it", tool)
	}
	t.Skipf("%s is not installed (apt-get install %s)", tool, debianPackage)
	return ""
}
