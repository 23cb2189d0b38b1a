package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Sentinel is a real redis-sentinel on loopback, monitoring one master
// under the name "mymaster", with short timeouts so that a failover happens
// within seconds.
type Sentinel struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	exit chan struct{}
}

// MasterName is the name the test Sentinels monitor their master under.
const MasterName = "mymaster"

// StartSentinel starts a Sentinel monitoring master (host:port), with a
// quorum of quorum, and stops it at cleanup.
func StartSentinel(t testing.TB, master string, quorum int) *Sentinel {
	t.Helper()
	bin := RequireTool(t, "redis-sentinel", "redis-sentinel")
	host, port, _ := net.SplitHostPort(master)
	addr := FreeAddr(t)
	_, myPort, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	config := fmt.Sprintf(`port %s
bind 127.0.0.1
protected-mode no
dir %s
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 1
`, myPort, dir, MasterName, host, port, quorum, MasterName, MasterName, MasterName)
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sentinel{Addr: addr, t: t, exit: make(chan struct{})}
	s.cmd = exec.Command(bin, conf)
	s.cmd.SysProcAttr = ProcAttr(nil)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exit) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.exit })
	WaitFor(t, 30*time.Second, "redis-sentinel to answer", func() bool { return s.Master() == master })
	return s
}

// Knows reports whether the Sentinel lists replica (host:port) among the
// master's replicas and n other Sentinels: what it needs to fail over.
func (s *Sentinel) Knows(replica string, n int) bool {
	replicas, sentinels := s.ask("SENTINEL", "replicas", MasterName), s.ask("SENTINEL", "sentinels", MasterName)
	_, port, _ := net.SplitHostPort(replica)
	return strings.Contains(replicas, "\n"+port+"\n") && strings.Count(sentinels, "\nrunid\n") == n
}

func (s *Sentinel) ask(args ...string) string {
	host, port, _ := net.SplitHostPort(s.Addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	if err != nil {
		return ""
	}
	return "\n" + string(out)
}

// Master asks the Sentinel which address the master has now ("" when it
// does not answer).
func (s *Sentinel) Master() string {
	fields := strings.Fields(s.ask("SENTINEL", "get-master-addr-by-name", MasterName))
	if len(fields) != 2 {
		return ""
	}
	return net.JoinHostPort(fields[0], fields[1])
}

// FreeAddr returns a loopback address nobody listens on right now, for
// programs (Prometheus, Sentinel) that cannot report the port they chose.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
