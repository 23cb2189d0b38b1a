package appsig

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// An explicit time: two writes within the file system's clock tick
	// must still look changed.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestFileReloads: the file is re-read when it changes; a broken file
// keeps the last good secrets in force, logged without a secret.
func TestFileReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.yml")
	mtime := time.Unix(1700000000, 0)
	writeFile(t, path, "app-1: first-secret\n", mtime)
	var logs bytes.Buffer
	f, err := Open(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		content string // "" removes the file
		want    Secrets
		ok      float64
	}{
		{"app-1: first-secret\n", Secrets{"app-1": "first-secret"}, 1},
		{"app-1: other-secret\n", Secrets{"app-1": "other-secret"}, 1}, // same size, new time
		{"app-1: other-secret\napp-2: second-secret\n", Secrets{"app-1": "other-secret", "app-2": "second-secret"}, 1},
		{"app-1: [broken-secret\n", Secrets{"app-1": "other-secret", "app-2": "second-secret"}, 0},
		{"", Secrets{"app-1": "other-secret", "app-2": "second-secret"}, 0},
		{"app-3: third-secret\n", Secrets{"app-3": "third-secret"}, 1},
	} {
		mtime = mtime.Add(time.Second)
		if step.content == "" {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else if i > 0 {
			writeFile(t, path, step.content, mtime)
		}
		if got := f.Secrets(); !reflect.DeepEqual(got, step.want) {
			t.Fatalf("step %d: secrets %v, want %v", i, got, step.want)
		}
		if ok := testutil.ToFloat64(f.Collector()); ok != step.ok {
			t.Fatalf("step %d: last reload successful %v, want %v", i, ok, step.ok)
		}
	}
	for _, secret := range []string{"first-secret", "other-secret", "second-secret", "broken-secret", "third-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret is logged:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "last good secrets stay in force") {
		t.Fatalf("the broken file is not logged:\n%s", logs.String())
	}
}

// TestOpenRefuses: a missing, broken or empty file refuses the start.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yml")
	writeFile(t, empty, "", time.Now())
	for _, path := range []string{filepath.Join(dir, "missing.yml"), empty} {
		if _, err := Open(path, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%s: opened", path)
		}
	}
}

// TestFileBackAfterVanishing: a file that disappears for a moment and comes
// back unchanged (same inode, time and size: a mount hiccup, a rename away
// and back) is in force again and says so, rather than leaving the reload
// gauge at 0 for good.
func TestFileBackAfterVanishing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.yml")
	writeFile(t, path, "app-1: first-secret\n", time.Unix(1700000000, 0))
	f, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		from, to string
		ok       float64
	}{{path, path + ".away", 0}, {path + ".away", path, 1}} {
		if err := os.Rename(step.from, step.to); err != nil {
			t.Fatal(err)
		}
		if got := f.Secrets(); !reflect.DeepEqual(got, Secrets{"app-1": "first-secret"}) {
			t.Fatalf("step %d: secrets %v", i, got)
		}
		if ok := testutil.ToFloat64(f.Collector()); ok != step.ok {
			t.Fatalf("step %d: last reload successful %v, want %v", i, ok, step.ok)
		}
	}
}
