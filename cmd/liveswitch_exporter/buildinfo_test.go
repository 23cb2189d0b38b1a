package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func TestBuildVarsFill(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	for _, tc := range []struct {
		name     string
		ldflags  buildVars // what -ldflags -X set
		main     string    // the main module's version
		settings []debug.BuildSetting
		want     buildVars
	}{
		{"go build without VCS information", buildVars{}, "(devel)", nil, buildVars{}},
		{"go build in a clean checkout", buildVars{}, "v0.0.0-20260102030405-0123456789ab", vcs("false"),
			buildVars{"v0.0.0-20260102030405-0123456789ab", rev, "2026-01-02T03:04:05Z"}},
		{"go build in a checkout with changes", buildVars{}, "v0.0.0-20260102030405-0123456789ab+dirty", vcs("true"),
			buildVars{"v0.0.0-20260102030405-0123456789ab+dirty", rev + "-dirty", "2026-01-02T03:04:05Z"}},
		{"go build with -buildvcs=false", buildVars{}, "(devel)", []debug.BuildSetting{{Key: "-buildvcs", Value: "false"}}, buildVars{}},
		{"go install module@version", buildVars{}, "v1.2.3", nil, buildVars{Version: "v1.2.3"}},
		{"release build: the linker flags win", buildVars{"1.0.0", "abc", "20260101-00:00:00"}, "v0.0.0-20260102030405-0123456789ab", vcs("true"),
			buildVars{"1.0.0", "abc", "20260101-00:00:00"}},
		{"only the version from the linker flags", buildVars{Version: "1.0.0"}, "(devel)", vcs("false"),
			buildVars{"1.0.0", rev, "2026-01-02T03:04:05Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.ldflags
			v.fill(&debug.BuildInfo{Main: debug.Module{Path: "github.com/liveswitch-exporter/liveswitch_exporter", Version: tc.main}, Settings: tc.settings})
			if v != tc.want {
				t.Fatalf("got %+v, want %+v", v, tc.want)
			}
		})
	}
}

// TestVersionOfAPlainGoBuild builds the exporter as a user does, with go
// build in a git checkout and no -ldflags, and checks that --version and
// liveswitch_exporter_build_info name the commit. (That release linker
// flags take precedence is TestImageAgreesWithDockerfile's: scripts/image.sh
// stamps them, and --version of the image must show them.) The checkout is a copy of this one in a
// fresh repository: this one may be a worktree (which the go command does
// not stamp) or have GOFLAGS=-buildvcs=false.
func TestVersionOfAPlainGoBuild(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	git := testenv.RequireTool(t, "git", "git")
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
			"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	copyCheckout(t, git, dir)
	run(git, "init", "-q")
	run(git, "add", "-A")
	run(git, "commit", "-q", "-m", "test build")
	rev := run(git, "rev-parse", "HEAD")

	bin := filepath.Join(dir, "plain", name)
	run("go", "build", "-buildvcs=true", "-o", bin, "./cmd/liveswitch_exporter")
	out := run(bin, "--version")
	for _, want := range []string{
		"version v0.0.0-20260102030405-" + rev[:12] + " ",
		"revision: " + rev + ")",
		"build date:       2026-01-02T03:04:05Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--version of a plain go build lacks %q:\n%s", want, out)
		}
	}
	p := startBinary(t, bin, nil, "--web.listen-address=127.0.0.1:0", "--storage.in-memory")
	info := scrape(t, p)["liveswitch_exporter_build_info"].GetMetric()
	if len(info) != 1 {
		t.Fatalf("%d build_info series", len(info))
	}
	labels := map[string]string{}
	for _, l := range info[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v0.0.0-20260102030405-"+rev[:12] || labels["revision"] != rev {
		t.Errorf("build_info of a plain go build: %v", labels)
	}

}

// copyCheckout copies the files of the checkout this test runs in, as git
// sees them (tracked or not ignored, with their current content), to dir.
func copyCheckout(t *testing.T, git, dir string) {
	t.Helper()
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	root := strings.TrimSpace(string(top))
	list, err := exec.Command(git, "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src, err := os.Open(filepath.Join(root, rel))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		} else if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(dst)
		if err == nil {
			_, err = io.Copy(f, src)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
