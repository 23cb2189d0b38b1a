package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it when
// the test ends. It skips the test when mounting is refused (not root, or
// no right to mount), and says so.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("a real full disk needs a tmpfs, and mounting one was refused (run as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for small := chunk[:4096]; ; { // the last pages
		if _, err := f.Write(small); err != nil {
			break
		}
	}
}

// postBody posts body and returns the status and the answer.
func postBody(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// TestFullDisk runs the exporter on a real file system that fills up: the
// webhooks get 503 with a reason that names no path, nothing acknowledged is
// lost across restarts on the full disk, and once space is freed the
// exporter takes events again.
func TestFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "96m")
	store, filler := filepath.Join(mnt, "store"), filepath.Join(mnt, "filler")
	args := []string{"--storage.path=" + store, "--server.retention=0"}
	l, base := newAckLedger(), time.Now().Add(-time.Minute).UnixMilli()
	p := startExporter(t, args...)
	sendSequential(t, p, l, "before", 50, base)

	fill(t, filler)
	for range 3 {
		id := "full"
		index, ev := l.send(id, base)
		code, answer := postBody(t, p.url("/webhook"), `{"timestamp":`+strconv.FormatInt(ev.ms, 10)+`,"type":"mediaserver.`+ev.action+`","mediaserver":{"id":"full"}}`)
		l.answered(id, index, code)
		if code != http.StatusServiceUnavailable || !strings.Contains(answer, "disk is full") || strings.Contains(answer, mnt) {
			t.Fatalf("with the disk full: %d %q, want 503 saying the disk is full, naming no path", code, answer)
		}
	}
	families := scrape(t, p)
	if up := families["liveswitch_exporter_storage_up"].GetMetric()[0].GetGauge().GetValue(); up != 0 {
		t.Errorf("storage_up %v with the disk full", up)
	}
	if errs := families["liveswitch_exporter_storage_errors_total"].GetMetric()[0].GetCounter().GetValue(); errs != 3 {
		t.Errorf("storage_errors_total %v, want 3", errs)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stopping on a full disk: %v\n%s", err, p.log())
	}

	// Still full: the exporter refuses to open the store for writing (the
	// engine could not write its files), with one line saying why.
	code, out := runToExit(t, args...)
	if code == 0 || strings.Count(out, "level=ERROR") != 1 || !strings.Contains(out, "no space left") {
		t.Fatalf("start on the full disk: exit %d, want non-zero and one error line saying the disk is full:\n%s", code, out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = startExporter(t, args...)
	if n := checkLedger(t, p, l); n != 50 {
		t.Fatalf("%d acknowledged events present after space came back, want 50", n)
	}
	sendSequential(t, p, l, "after", 20, base)
	p.kill(t)
	p = startExporter(t, args...)
	if n := checkLedger(t, p, l); n != 70 {
		t.Fatalf("%d acknowledged events present, want 70", n)
	}
}
