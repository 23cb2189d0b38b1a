package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestCloseFailureExitsNonZero: when the store cannot be closed properly
// (its database was deleted under the running exporter), the shutdown says
// so in the log and exits non-zero; the next start refuses the store that
// lost its database rather than start empty.
func TestCloseFailureExitsNonZero(t *testing.T) {
	store := t.TempDir()
	l, base := newAckLedger(), time.Now().Add(-time.Minute).UnixMilli()
	p := startExporter(t, "--storage.path="+store, "--server.retention=0")
	sendSequential(t, p, l, "closing", 40, base)
	if err := os.RemoveAll(filepath.Join(store, "pebble")); err != nil {
		t.Fatal(err)
	}
	err := p.stop()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("shutdown with a store that cannot be closed: %v, want a non-zero exit\n%s", err, p.log())
	}
	if errs := errorLines(p.log()); len(errs) != 1 || !strings.Contains(errs[0], "no such file or directory") {
		t.Fatalf("the shutdown does not say why the store could not be closed:\n%s", p.log())
	}
	code, out := runToExit(t, "--storage.path="+store)
	if code == 0 || !strings.Contains(out, "store damaged: "+filepath.Join(store, "pebble")+": missing") {
		t.Fatalf("start on the store that lost its database: exit %d\n%s", code, out)
	}
}

// TestSecondSignalExitsAtOnce: a graceful shutdown waits for requests in
// flight (here a client that sends half a webhook and stalls); a second
// SIGTERM ends the process at once, saying so, with a non-zero exit.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	p := startExporter(t, "--web.read-timeout=10m")
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"timestamp\":")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the stalled request to be in flight", func() bool {
		return strings.Contains(scrapeText(t, p), "liveswitch_exporter_webhook_requests_in_flight 1")
	})
	p.signal(t, syscall.SIGTERM)
	testenv.WaitFor(t, 10*time.Second, "the graceful shutdown to begin", func() bool {
		return strings.Contains(p.log(), "Shutting down")
	})
	p.signal(t, syscall.SIGTERM)
	err = <-p.exit
	p.exit <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(p.log(), "Second signal: exiting at once") {
		t.Fatalf("after a second SIGTERM: %v, want exit status 1 saying so\n%s", err, p.log())
	}
}

func scrapeText(t *testing.T, p *process) string {
	t.Helper()
	_, body := get(p.url("/metrics"))
	return body
}

// errorLines returns the lines of a log at level ERROR.
func errorLines(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}
