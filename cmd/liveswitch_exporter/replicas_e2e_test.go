package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// startReplica runs an exporter that shares its fleet through redisURL.
func startReplica(t testing.TB, redisURL string, args ...string) *process {
	t.Helper()
	return startExporterEnv(t, nil, append([]string{"--web.listen-address=127.0.0.1:0", "--storage.redis-url=" + redisURL}, args...)...)
}

// scrapeFleet returns the fleet section of p's /metrics.
func scrapeFleet(t testing.TB, p *process) string {
	t.Helper()
	code, body := get(p.url("/metrics"))
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", code, body)
	}
	return fleetSection(body)
}

// convergedFleet polls until every process shows the same fleet section and
// returns it.
func convergedFleet(t testing.TB, ps ...*process) string {
	t.Helper()
	var sections []string
	testenv.WaitFor(t, 30*time.Second, "replicas to converge", func() bool {
		sections = sections[:0]
		for _, p := range ps {
			sections = append(sections, scrapeFleet(t, p))
		}
		for _, s := range sections[1:] {
			if s != sections[0] {
				return false
			}
		}
		return strings.Contains(sections[0], "liveswitch_server_up{")
	})
	return sections[0]
}

var serverLabelRE = regexp.MustCompile(`id="([^"]*)",origin="([^"]*)"`)

// byServer splits a fleet section into the lines of each server
// ("origin/id") and the rest (HELP, TYPE and the per-group families).
func byServer(section string) (rest string, servers map[string]string) {
	servers = map[string]string{}
	var other []string
	for _, line := range strings.Split(section, "\n") {
		if m := serverLabelRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "liveswitch_server_") {
			servers[m[2]+"/"+m[1]] += line + "\n"
			continue
		}
		other = append(other, line)
	}
	return strings.Join(other, "\n"), servers
}

// TestReplicasShowOneFleet: three replicas on one Redis get a simulated
// fleet's events at random, then duplicated and reordered deliveries of one
// server's events at the same instant on two replicas. Every replica must
// show the same fleet, byte for byte, and it must be what one exporter fed
// the same events shows: for a reordered pair, one exporter fed the pair in
// one order or the other, since both were delivered at once.
func TestReplicasShowOneFleet(t *testing.T) {
	redis := testenv.StartRedis(t)
	replicas := []*process{startReplica(t, redis.URL()), startReplica(t, redis.URL()), startReplica(t, redis.URL())}
	inOrder, reversed := startExporter(t, "--storage.in-memory"), startExporter(t, "--storage.in-memory")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	pick := func() *process { return replicas[rng.IntN(len(replicas))] }

	// A simulated fleet: each server's events in order, to random replicas.
	gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
	perServer := map[string][][]byte{}
	var keys []string
	for range 600 {
		ev := gen.Next()
		if perServer[ev.Key] == nil {
			keys = append(keys, ev.Key)
		}
		perServer[ev.Key] = append(perServer[ev.Key], ev.Body)
		post(t, inOrder.url("/webhook"), ev.Body)
		post(t, reversed.url("/webhook"), ev.Body)
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		targets := make([]*process, len(perServer[k]))
		for i := range targets {
			targets[i] = pick()
		}
		wg.Go(func() {
			for i, body := range perServer[k] {
				if code := post(t, targets[i].url("/webhook"), body); code >= 300 && code != http.StatusAccepted {
					t.Errorf("replica answered %d", code)
				}
			}
		})
	}
	wg.Wait()

	// Then, for media servers, the same event on two replicas at once, or a
	// later and an earlier event on two replicas at once.
	base := time.Now().Add(time.Minute).UnixMilli()
	pairs := 0
	for _, k := range keys {
		origin, id, _ := strings.Cut(k, "/")
		if origin != "mediaserver" {
			continue
		}
		event := func(ts int64, action string) []byte {
			return fmt.Appendf(nil, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":%q}}`, ts, action, id)
		}
		older, newer := event(base, "unregistered"), event(base+1, "registered")
		if pairs%2 == 0 {
			newer = older // a duplicate delivery
		}
		pairs++
		// Two different replicas: the first two of one permutation (two
		// independent draws would pick the same replica a third of the time).
		perm := rng.Perm(len(replicas))
		a, b := perm[0], perm[1]
		var both sync.WaitGroup
		both.Go(func() { post(t, replicas[a].url("/webhook"), older) })
		both.Go(func() { post(t, replicas[b].url("/webhook"), newer) })
		both.Wait()
		for _, body := range [][]byte{older, newer} {
			post(t, inOrder.url("/webhook"), body)
		}
		for _, body := range [][]byte{newer, older} {
			post(t, reversed.url("/webhook"), body)
		}
	}

	got := convergedFleet(t, replicas...)
	gotRest, gotServers := byServer(got)
	wantRest, inOrderServers := byServer(scrapeFleet(t, inOrder))
	reversedRest, reversedServers := byServer(scrapeFleet(t, reversed))
	if wantRest != reversedRest {
		t.Fatal("the state after a reordered pair must not depend on its order; the references differ")
	}
	if gotRest != wantRest {
		t.Fatalf("per-group series differ from one exporter's:\n%s\nwant:\n%s", gotRest, wantRest)
	}
	if len(gotServers) != len(inOrderServers) {
		t.Fatalf("replicas track %d servers, one exporter %d", len(gotServers), len(inOrderServers))
	}
	for k, lines := range gotServers {
		if lines != inOrderServers[k] && lines != reversedServers[k] {
			t.Errorf("server %s matches neither delivery order:\n%s\nin order:\n%s\nreversed:\n%s",
				k, lines, inOrderServers[k], reversedServers[k])
		}
	}
	t.Logf("%d servers, %d concurrent pairs; 3 replicas identical", len(gotServers), pairs)

	// One replica forgets a server on an operator's word; all forget it.
	origin, id, _ := strings.Cut(keys[0], "/")
	req, _ := http.NewRequest(http.MethodDelete, replicas[1].url("/api/v1/servers/"+origin+"/"+id), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through one replica: %v %v", resp, err)
	}
	resp.Body.Close()
	after := convergedFleet(t, replicas...)
	if _, servers := byServer(after); servers[keys[0]] != "" || len(servers) != len(gotServers)-1 {
		t.Fatalf("after DELETE of %s: %d servers, it still shows: %q", keys[0], len(servers), servers[keys[0]])
	}
}

// TestReplicaKilledCatchesUp kills a replica with SIGKILL while senders post
// to both, restarts it, and checks that it shows what the other shows and
// that every acknowledged event is reflected in both.
func TestReplicaKilledCatchesUp(t *testing.T) {
	redis, a, b, targets, ledger, stop := twoReplicasUnderLoad(t)
	b.kill(t)
	ledger.waitAcked(t, ledger.acked()+200) // a goes on alone
	b = startReplica(t, redis.URL())
	targets.set([]*process{a, b})
	ledger.waitAcked(t, ledger.acked()+200)
	stop()
	convergedFleet(t, a, b)
	checkLedger(t, a, ledger)
	checkLedger(t, b, ledger)
	t.Logf("%d acknowledged events reflected in both replicas", ledger.acked())
}

// TestRedisOutageRecovers stops Redis while senders post to two replicas:
// webhooks are answered 503 with Retry-After, the replicas keep serving
// their last fleet and report not ready; when Redis is back they catch up by
// themselves and every acknowledged event is reflected.
func TestRedisOutageRecovers(t *testing.T) {
	t.Parallel()
	redis, a, b, _, ledger, stop := twoReplicasUnderLoad(t)
	redis.Kill()
	for _, p := range []*process{a, b} {
		testenv.WaitFor(t, 30*time.Second, "not ready while Redis is down", func() bool {
			code, _ := get(p.url("/-/ready"))
			return code == http.StatusServiceUnavailable
		})
		if code, body := get(p.url("/metrics")); code != http.StatusOK || !strings.Contains(body, "liveswitch_exporter_storage_up 0") ||
			!strings.Contains(body, "liveswitch_server_up{") {
			t.Fatalf("/metrics while Redis is down: %d, want the last fleet and storage_up 0", code)
		}
	}
	ledger.waitStatus(t, http.StatusServiceUnavailable)
	redis.Start()
	for _, p := range []*process{a, b} {
		testenv.WaitFor(t, 30*time.Second, "ready again", func() bool {
			code, _ := get(p.url("/-/ready"))
			return code == http.StatusOK
		})
	}
	ledger.waitAcked(t, ledger.acked()+200)
	stop()
	convergedFleet(t, a, b)
	checkLedger(t, a, ledger)
	checkLedger(t, b, ledger)
	for _, p := range []*process{a, b} {
		if p.cmd.ProcessState != nil {
			t.Fatal("a replica exited during the outage")
		}
	}
	t.Logf("%d acknowledged, %d answered 503 during the outage", ledger.acked(), ledger.statusCount(http.StatusServiceUnavailable))
}

// twoReplicasUnderLoad starts a Redis and two replicas on it, and 8 senders
// posting to the replicas until stop; it returns once 200 events were
// acknowledged.
func twoReplicasUnderLoad(t *testing.T) (redis *testenv.Redis, a, b *process, targets *targetSet, ledger *ackLedger, stop func()) {
	t.Helper()
	redis = testenv.StartRedis(t)
	a, b = startReplica(t, redis.URL()), startReplica(t, redis.URL())
	targets = &targetSet{ps: []*process{a, b}}
	ledger, stop = startLoad(t, targets)
	ledger.waitAcked(t, 200)
	return redis, a, b, targets, ledger, stop
}

// startLoad starts 8 senders posting to targets until stop is called.
func startLoad(t testing.TB, targets *targetSet) (ledger *ackLedger, stop func()) {
	ledger = newAckLedger()
	return ledger, resumeLoad(t, targets, ledger)
}

// resumeLoad is startLoad with the ledger of an earlier load: the senders
// go on with the same servers.
func resumeLoad(t testing.TB, targets *targetSet, ledger *ackLedger) (stop func()) {
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Go(func() { sendUntilStopped(targets.pick, ledger, s, 4, base, done) })
	}
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// targetSet is the replicas senders choose from, replaced when one restarts.
type targetSet struct {
	mu sync.Mutex
	ps []*process
}

func (s *targetSet) pick() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps[rand.IntN(len(s.ps))].url("/webhook")
}

func (s *targetSet) set(ps []*process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ps = ps
}

// TestReplicaOverTLS: a replica reaches a TLS-only Redis through rediss://,
// trusting a private CA through SSL_CERT_FILE; without the CA it refuses the
// server and stays not ready.
func TestReplicaOverTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	redis := testenv.StartRedisWith(t, testenv.RedisOptions{PKI: pki})
	p := startExporterEnv(t, []string{"SSL_CERT_FILE=" + pki.CAFile},
		"--web.listen-address=127.0.0.1:0", "--storage.redis-url="+redis.URL())
	feedSimulated(t, p, 50)
	if fleet := scrapeFleet(t, p); !strings.Contains(fleet, "liveswitch_server_up{") {
		t.Fatal("no fleet after events through a TLS Redis")
	}
	untrusting := startListening(t, []string{"SSL_CERT_FILE=/dev/null"},
		"--web.listen-address=127.0.0.1:0", "--storage.redis-url="+redis.URL())
	testenv.WaitFor(t, 30*time.Second, "a certificate error in the log", func() bool {
		return strings.Contains(untrusting.log(), "Loading the fleet from the shared store failed") &&
			strings.Contains(untrusting.log(), "certificate")
	})
	if code, _ := get(untrusting.url("/-/ready")); code != http.StatusServiceUnavailable {
		t.Fatalf("a replica that cannot reach its Redis answers /-/ready %d", code)
	}
}

// TestReplicaWithRedisPassword: the password of the URL authenticates the
// replica and never shows in its log; a wrong one keeps it not ready.
func TestReplicaWithRedisPassword(t *testing.T) {
	const password = "s3cret-redis-pass"
	redis := testenv.StartRedisWith(t, testenv.RedisOptions{Password: password})
	p := startReplica(t, redis.URL(), "--log.level=debug")
	feedSimulated(t, p, 20)
	wrong := startListening(t, nil, "--web.listen-address=127.0.0.1:0", "--log.level=debug",
		"--storage.redis-url="+strings.Replace(redis.URL(), password, "wrong-guess-pass", 1))
	testenv.WaitFor(t, 30*time.Second, "an authentication error in the log", func() bool {
		return strings.Contains(wrong.log(), "Loading the fleet from the shared store failed")
	})
	if code, _ := get(wrong.url("/-/ready")); code != http.StatusServiceUnavailable {
		t.Fatalf("a replica with a wrong password answers /-/ready %d", code)
	}
	for _, q := range []*process{p, wrong} {
		if log := q.log(); strings.Contains(log, password) || strings.Contains(log, "wrong-guess-pass") {
			t.Fatalf("a Redis password shows in the log:\n%s", log)
		}
	}
}
