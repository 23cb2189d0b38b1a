package testenv

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a real redis-server on loopback, private to one test, with the
// persistence the README recommends (appendonly yes, appendfsync always), so
// that a test can kill it and start it again without losing what it
// acknowledged.
type Redis struct {
	// Addr is host:port of the server.
	Addr string
	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
	exit chan struct{}
	opts RedisOptions
}

// RedisOptions shape a test's redis-server.
type RedisOptions struct {
	// PKI, when set, makes the server speak only TLS with its server
	// certificate (clients need not present one).
	PKI *PKI
	// Password, when set, is required of clients (requirepass).
	Password string
	// Args are more redis-server options, e.g. "--maxmemory-policy",
	// "allkeys-lru".
	Args []string
}

// StartRedis starts a redis-server for the test and stops it at cleanup.
func StartRedis(t testing.TB) *Redis { return StartRedisWith(t, RedisOptions{}) }

// StartRedisWith is StartRedis with TLS or a password.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	bin := RequireTool(t, "redis-server", "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &Redis{Addr: addr, t: t, bin: bin, dir: t.TempDir(), opts: opts}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// URL is the --storage.redis-url of the server.
func (r *Redis) URL() string {
	scheme, auth := "redis://", ""
	if r.opts.PKI != nil {
		scheme = "rediss://"
	}
	if r.opts.Password != "" {
		auth = ":" + r.opts.Password + "@"
	}
	return scheme + auth + r.Addr + "/0"
}

// Start (re)starts the server on its address and data directory and waits
// until it answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--protected-mode", "no", "--loglevel", "warning"}
	if p := r.opts.PKI; p != nil {
		args = append(args, "--port", "0", "--tls-port", port, "--tls-cert-file", p.CertFile,
			"--tls-key-file", p.KeyFile, "--tls-ca-cert-file", p.CAFile, "--tls-auth-clients", "no")
	}
	if r.opts.Password != "" {
		args = append(args, "--requirepass", r.opts.Password)
	}
	args = append(args, r.opts.Args...)
	r.cmd = DieWithTest(exec.Command(r.bin, args...))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) { _ = cmd.Wait(); close(exit) }(r.cmd, r.exit)
	deadline := time.Now().Add(30 * time.Second)
	for r.Ping() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING", r.Addr)
		}
		select {
		case <-r.exit:
			r.t.Fatalf("redis-server on %s exited at start", r.Addr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
	r.cmd = nil
}

// CLI runs redis-cli against the server with args and returns its output,
// failing the test when redis-cli fails.
func (r *Redis) CLI(args ...string) string {
	r.t.Helper()
	host, port, _ := net.SplitHostPort(r.Addr)
	base := []string{"-h", host, "-p", port}
	if r.opts.Password != "" {
		base = append(base, "--no-auth-warning", "-a", r.opts.Password)
	}
	out, err := exec.Command(RequireTool(r.t, "redis-cli", "redis-tools"), append(base, args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Overwrite runs cmd (whose first argument is the key, as in "HSET", key,
// "a", "b") on a key deleted first, atomically: the key ends holding what
// cmd makes, whatever it held before (a command of another type than the
// key's would be refused otherwise).
func (r *Redis) Overwrite(cmd ...string) string {
	r.t.Helper()
	script := "redis.call('DEL', KEYS[1]); return redis.call(ARGV[1], KEYS[1], unpack(ARGV, 2))"
	args := append([]string{"EVAL", script, "1", cmd[1], cmd[0]}, cmd[2:]...)
	return r.CLI(args...)
}

// Pause stops the server with SIGSTOP (a hung Redis); Resume continues it.
func (r *Redis) Pause()  { r.signal(syscall.SIGSTOP) }
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		r.t.Fatal("redis-server is not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// Ping sends PING over a fresh connection and checks the answer.
func (r *Redis) Ping() error {
	var conn net.Conn
	var err error
	if r.opts.PKI != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr, r.opts.PKI.TLSConfig(false))
	} else {
		conn, err = net.DialTimeout("tcp", r.Addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server that wants a password answers NOAUTH: it is up all the same.
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("PING answered %s", strconv.Quote(line))
	}
	return nil
}
