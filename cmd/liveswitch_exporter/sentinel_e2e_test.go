package main

import (
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// sentinelSetup is a Redis master, one Redis replica of it and three
// Sentinels (quorum 2) that know both, as a production setup has them.
type sentinelSetup struct {
	master, replica *testenv.Redis
	// link carries the replication from the master to the replica.
	link      *testenv.Relay
	sentinels []*testenv.Sentinel
}

func startSentinelSetup(t *testing.T) *sentinelSetup {
	t.Helper()
	s := &sentinelSetup{master: testenv.StartRedis(t)}
	s.link = testenv.StartRelay(t, s.master.Addr)
	host, port, _ := net.SplitHostPort(s.link.Addr)
	s.replica = testenv.StartRedisWith(t, testenv.RedisOptions{Args: []string{"--replicaof", host, port}})
	testenv.WaitFor(t, 30*time.Second, "the Redis replica in sync", func() bool {
		return regexp.MustCompile(`master_link_status:up`).MatchString(s.replica.CLI("INFO", "replication"))
	})
	for range 3 {
		s.sentinels = append(s.sentinels, testenv.StartSentinel(t, s.master.Addr, 2))
	}
	testenv.WaitFor(t, 60*time.Second, "the Sentinels to know the replica and each other", func() bool {
		for _, sen := range s.sentinels {
			if !sen.Knows(s.replica.Addr, 2) {
				return false
			}
		}
		return true
	})
	return s
}

// url is the exporter's --storage.redis-url through the Sentinels.
func (s *sentinelSetup) url() string {
	return "redis://" + s.sentinels[0].Addr + "/0?master_name=" + testenv.MasterName +
		"&addr=" + s.sentinels[1].Addr + "&addr=" + s.sentinels[2].Addr
}

// lag is how many bytes of the master's replication stream the replica
// has not acknowledged.
func (s *sentinelSetup) lag(t *testing.T) int {
	info := s.master.CLI("INFO", "replication")
	master := regexp.MustCompile(`master_repl_offset:(\d+)`).FindStringSubmatch(info)
	replica := regexp.MustCompile(`slave0:.*offset=(\d+)`).FindStringSubmatch(info)
	if master == nil || replica == nil {
		return 0
	}
	m, _ := strconv.Atoi(master[1])
	r, _ := strconv.Atoi(replica[1])
	return m - r
}

// failover kills the master with SIGKILL (after making its replica lag
// behind when lagging is set) and waits until the Sentinels promoted the
// replica.
func (s *sentinelSetup) failover(t *testing.T, lagging bool) {
	t.Helper()
	if lagging {
		// The replication link stalls: the master's writes from now on
		// never reach the replica (the Sentinels still see it up). With
		// --storage.redis-wait-replicas each append now waits out its WAIT
		// before its 503, so the master's stream grows slowly on a loaded
		// machine: give it time.
		s.link.Pause()
		testenv.WaitFor(t, 60*time.Second, "the replica to lag", func() bool { return s.lag(t) > 2000 })
	}
	s.master.Kill()
	testenv.WaitFor(t, 60*time.Second, "the Sentinels to promote the replica", func() bool {
		return s.sentinels[0].Master() == s.replica.Addr
	})
}

// TestSentinelFailover runs two replica processes on Redis behind three
// Sentinels, and kills the Redis master under load. The replicas follow the
// new master by themselves, show the same fleet byte for byte, and hold
// every acknowledged event — with a Redis replica in sync, and with one
// that lagged behind when --storage.redis-wait-replicas=1. Without it, the
// lagging case's lost events are counted and reported; that case asserts
// only convergence, so it runs in the long mode (LIVESWITCH_TEST_LONG=1).
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		lagging bool
		args    []string
		strict  bool
	}{
		{"replica in sync", false, nil, true},
		{"replica lagging, wait for 1 replica", true, []string{"--storage.redis-wait-replicas=1"}, true},
		{"replica lagging, no wait", true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.strict && os.Getenv("LIVESWITCH_TEST_LONG") == "" {
				t.Skip("the documented loss without WAIT: LIVESWITCH_TEST_LONG=1 runs it")
			}
			s := startSentinelSetup(t)
			if !tc.lagging {
				unknownMasterIsNamed(t, s)
			}
			a, b := startReplica(t, s.url(), tc.args...), startReplica(t, s.url(), tc.args...)
			ledger, stop := startLoad(t, &targetSet{ps: []*process{a, b}})
			ledger.waitAcked(t, 300)
			s.failover(t, tc.lagging)
			ledger.waitAcked(t, ledger.acked()+300) // on the new master
			stop()
			convergedFleet(t, a, b)
			t.Logf("the shared log was rebuilt %d times after the failover",
				strings.Count(a.log(), "The shared store lost data")+strings.Count(b.log(), "The shared store lost data"))
			for _, p := range []*process{a, b} {
				checked, lost, problems := auditLedger(t, p, ledger)
				for _, problem := range problems {
					if tc.strict {
						t.Error(problem)
					} else { // the loss window docs/replicas.md documents without WAIT
						t.Log("within the documented loss without WAIT:", problem)
					}
				}
				t.Logf("replica %s: %d acknowledged events checked, %d lost; %d answered 503, %d not confirmed or pending",
					p.addr, checked, lost, ledger.statusCount(http.StatusServiceUnavailable), ledger.statusCount(uncertain))
				if tc.strict && lost > 0 {
					t.Errorf("%d acknowledged events lost in the failover", lost)
				}
			}
		})
	}
}

// unknownMasterIsNamed: a replica given a master name the Sentinels do not
// know says so, rather than that every Sentinel is unreachable.
func unknownMasterIsNamed(t *testing.T, s *sentinelSetup) {
	t.Helper()
	url := strings.Replace(s.url(), "master_name="+testenv.MasterName, "master_name=nosuchmaster", 1)
	p := startListening(t, nil, "--web.listen-address=127.0.0.1:0", "--storage.redis-url="+url)
	testenv.WaitFor(t, 30*time.Second, "the unknown master named in the log", func() bool {
		return strings.Contains(p.log(), `know no master named \"nosuchmaster\"`)
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}
