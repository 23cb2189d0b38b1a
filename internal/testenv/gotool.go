package testenv

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireGoTool returns the path of a program that `go install` builds
// (helm, jsonnet), looked for on PATH and then in GOBIN or GOPATH/bin, where
// go install puts it even when that is not on PATH. On CI a missing tool
// fails the test, since .ci/run installs it; elsewhere the test is skipped
// with the command that installs it.
func RequireGoTool(t testing.TB, tool, module string) string {
	t.Helper()
	if path, err := exec.LookPath(tool); err == nil {
		return path
	}
	dirs := []string{os.Getenv("GOBIN")}
	for _, p := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, tool)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/run must install it (go install %s)", tool, module)
	}
	t.Skipf("%s is not installed (go install %s)", tool, module)
	return ""
}
