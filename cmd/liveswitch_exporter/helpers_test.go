package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// binary is the exporter built once for all end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	raiseParallel()
	dir, err := os.MkdirTemp("", "liveswitch_exporter-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitingParallel is how many parallel tests run at once unless -parallel
// says otherwise. The parallel tests of this package spend their time
// waiting on other programs (Redis failovers, paused processes, Prometheus,
// builds), not computing, so more of them than there are cores (Go's
// default) keep two cores busy.
const waitingParallel = 6

// raiseParallel sets -test.parallel to waitingParallel when the command
// line did not set it.
func raiseParallel() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && runtime.GOMAXPROCS(0) < waitingParallel {
		flag.Set("test.parallel", strconv.Itoa(waitingParallel))
	}
}

// requireTool is testenv.RequireTool for Prometheus' binaries.
func requireTool(t testing.TB, tool string) string {
	t.Helper()
	return testenv.RequireTool(t, tool, "prometheus")
}

// process is a running exporter.
type process struct {
	cmd   *exec.Cmd
	addr  string // host:port of its first listener
	mu    sync.Mutex
	logs  bytes.Buffer
	addrs []string // every listener, in the order they were logged
	exit  chan error
	addrc chan string // the first listener's address, once
}

var listeningRE = regexp.MustCompile(`msg"?[=:]"Listening on",? ?"?address"?[=:]"?([0-9.:\[\]]+)`)

// startExporter runs the exporter with args on a free loopback port, with a
// store of its own in a temporary directory unless args name another, and
// waits until it is ready. It is stopped with SIGTERM when the test ends.
func startExporter(t testing.TB, args ...string) *process {
	t.Helper()
	defaults := []string{"--web.listen-address=127.0.0.1:0", "--storage.path=" + t.TempDir()}
	return startExporterEnv(t, nil, append(defaults, args...)...)
}

// startExporterEnv is startExporter with extra environment variables and
// without a default listen address.
func startExporterEnv(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	p := startListening(t, env, args...)
	testenv.WaitFor(t, 30*time.Second, "exporter ready", func() bool {
		return strings.Contains(p.log(), "Fleet restored; ready")
	})
	return p
}

// startListening runs the exporter and waits until it listens, ready or not.
func startListening(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	return startBinary(t, binary, env, args...)
}

// startBinary is startListening with another build of the exporter.
func startBinary(t testing.TB, bin string, env []string, args ...string) *process {
	t.Helper()
	p := launch(t, bin, env, args...)
	select {
	case p.addr = <-p.addrc:
	case err := <-p.exit:
		t.Fatalf("exporter exited before listening: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("exporter did not listen within 30s\n%s", p.log())
	}
	return p
}

// launch starts bin with args and returns at once. Its exit is reported on
// p.exit once its whole log has been read; the first listener's address on
// p.addrc.
func launch(t testing.TB, bin string, env []string, args ...string) *process {
	t.Helper()
	return launchAs(t, nil, bin, env, args...)
}

// launchAs is launch as the user cred names (nil: this process's).
func launchAs(t testing.TB, cred *syscall.Credential, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{exit: make(chan error, 1), addrc: make(chan string, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	testenv.DieWithTest(p.cmd)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.readLogs(stderr, p.addrc)
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("exporter log:\n%s", p.log())
		}
	})
	return p
}

// listeners waits until the exporter logged n listeners and returns them.
func (p *process) listeners(t testing.TB, n int) []string {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d listeners", n), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.addrs) >= n
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.addrs...)
}

func (p *process) readLogs(r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		m := listeningRE.FindStringSubmatch(line)
		p.mu.Lock()
		p.logs.WriteString(line + "\n")
		if m != nil {
			p.addrs = append(p.addrs, m[1])
		}
		p.mu.Unlock()
		if m != nil && !sent {
			addrc <- m[1]
			sent = true
		}
	}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *process) url(path string) string { return "http://" + p.addr + path }

// kill stops the exporter with SIGKILL, as a crash would, and waits for it.
func (p *process) kill(t testing.TB) {
	t.Helper()
	// A process that exited already (a shutdown that finished first) is
	// simply waited for.
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-p.exit
	p.exit <- nil // for the cleanup's stop
}

// signal sends sig to the exporter without waiting for it to exit.
func (p *process) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGTERM and returns the exit error (nil for a clean exit).
func (p *process) stop() error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		p.exit <- err // for a later stop
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("exporter did not stop within 30s of SIGTERM")
	}
}

func get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t testing.TB, url string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// fleetSection keeps the lines of an exposition that describe the fleet
// (the liveswitch_server_*, liveswitch_servers and liveswitch_cores families),
// which must be identical wherever the same events were applied.
func fleetSection(exposition string) string {
	var out []string
	for _, line := range strings.Split(exposition, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if strings.HasPrefix(name, "liveswitch_server_") || strings.HasPrefix(name, "liveswitch_servers") ||
			strings.HasPrefix(name, "liveswitch_cores") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// feedSimulated posts the first n events of the default simulated fleet.
func feedSimulated(t testing.TB, p *process, n int) {
	t.Helper()
	gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
	for range n {
		post(t, p.url("/webhook"), gen.Next().Body)
	}
}

// unprivileged is the user (nobody) the exporter runs as in tests of what a
// user without rights to the store sees: root may use any file, so a test
// run as root runs the exporter as this user.
const unprivileged = 65534

// asUnprivileged returns the credential to run the exporter as an
// unprivileged user, after giving that user the store directories dirs
// (and a way to them, and to the binary); nil when the tests already run
// unprivileged. It skips the test, saying why, when the system refuses to
// run a process as another user.
func asUnprivileged(t *testing.T, dirs ...string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	cred := &syscall.Credential{Uid: unprivileged, Gid: unprivileged}
	probe := exec.Command("/bin/true")
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := probe.Run(); err != nil {
		t.Skipf("the exporter must run unprivileged here, and running a process as uid %d was refused: %v", unprivileged, err)
	}
	reachable(t, filepath.Dir(binary))
	for _, dir := range dirs {
		reachable(t, dir)
		err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, unprivileged, unprivileged)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return cred
}

// reachable lets every user enter dir and the directories above it.
func reachable(t *testing.T, dir string) {
	t.Helper()
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, info.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
		if d == filepath.Dir(d) {
			return
		}
	}
}

// runExporter runs the exporter (as cred, nil: this process's user) with
// args on a free loopback port, expecting it to stop by itself within
// within; it fails the test otherwise (killing it). It returns the exit
// status and the log.
func runExporter(t *testing.T, cred *syscall.Credential, within time.Duration, args ...string) (int, string) {
	t.Helper()
	p := launchAs(t, cred, binary, nil, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	select {
	case err := <-p.exit:
		p.exit <- err
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), p.log()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, p.log()
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		t.Fatalf("the exporter neither served nor exited within %s:\n%s", within, p.log())
		return 0, ""
	}
}

// refusalLines are the lines of a log that refuse a start: at level ERROR,
// or kong's one-line refusal of a flag.
func refusalLines(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, name+": error: ") {
			out = append(out, line)
		}
	}
	return out
}

// checkOneLineRefusal fails the test unless the exporter exited non-zero
// with one refusal line saying each of says, and no panic trace.
func checkOneLineRefusal(t *testing.T, what string, code int, log string, says ...string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "Listening on"} {
		if strings.Contains(log, bad) {
			t.Errorf("%s: the log holds %q:\n%s", what, bad, log)
			return
		}
	}
	lines := refusalLines(log)
	if code == 0 || len(lines) != 1 {
		t.Errorf("%s: exit %d with %d refusal lines, want a non-zero exit and one line:\n%s", what, code, len(lines), log)
		return
	}
	for _, s := range says {
		if !strings.Contains(lines[0], s) {
			t.Errorf("%s: the refusal does not say %q:\n%s", what, s, lines[0])
		}
	}
}
