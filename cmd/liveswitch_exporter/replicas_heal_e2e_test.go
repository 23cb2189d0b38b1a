package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// lossCount reads liveswitch_exporter_storage_data_loss_total{cause} of p.
func lossCount(t *testing.T, p *process, cause string) float64 {
	t.Helper()
	return sumByLabel(scrape(t, p)["liveswitch_exporter_storage_data_loss_total"], "cause")[cause]
}

func ready(p *process) bool {
	code, _ := get(p.url("/-/ready"))
	return code == http.StatusOK
}

// TestReplicasHealWhenRedisLosesKeys runs two replica processes on a real
// Redis, waits for a snapshot, then, with no traffic, deletes the log, the
// epoch key, the snapshot, and finally flushes everything. After each loss
// both replicas count it, are ready again by themselves, take a webhook,
// agree byte for byte with a replica started afterwards, and still show
// every acknowledged event; the rebuild is logged once.
func TestReplicasHealWhenRedisLosesKeys(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedis(t)
	a, b := startReplica(t, redis.URL()), startReplica(t, redis.URL())
	l, base := newAckLedger(), time.Now().Add(-10*time.Minute).UnixMilli()
	sendSequential(t, a, l, "a", 15, base)
	sendSequential(t, b, l, "b", 15, base)
	testenv.WaitFor(t, 60*time.Second, "a snapshot of the log", func() bool {
		return redis.CLI("HGET", "liveswitch_exporter:snapshot", "through") != ""
	})
	for i, loss := range []struct {
		cause string
		cmd   []string
	}{
		{"log", []string{"DEL", "liveswitch_exporter:log"}},
		{"epoch", []string{"DEL", "liveswitch_exporter:epoch"}},
		{"snapshot", []string{"DEL", "liveswitch_exporter:snapshot"}},
		{"all", []string{"FLUSHALL"}},
	} {
		lost := time.Now()
		redis.CLI(loss.cmd...)
		testenv.WaitFor(t, 30*time.Second, loss.cause+" loss counted and both replicas ready", func() bool {
			return lossCount(t, a, loss.cause) == 1 && lossCount(t, b, loss.cause) == 1 && ready(a) && ready(b)
		})
		t.Logf("%v: counted and ready again %s after the loss", loss.cmd, time.Since(lost).Round(10*time.Millisecond))
		sendSequential(t, b, l, fmt.Sprintf("after-%d", i), 2, base)
		c := startReplica(t, redis.URL())
		convergedFleet(t, a, b, c)
		for _, p := range []*process{a, b, c} {
			checkLedger(t, p, l)
		}
		if err := c.stop(); err != nil {
			t.Fatal(err)
		}
		rebuilt := strings.Count(a.log(), "The shared store lost data") + strings.Count(b.log(), "The shared store lost data")
		if rebuilt != i+1 {
			t.Fatalf("after %d losses the rebuild was logged %d times", i+1, rebuilt)
		}
	}
}

// TestReplicaRefusesAnEvictingRedis: with maxmemory-policy allkeys-lru
// Redis may evict the log; the replica stays not ready and says why, and
// becomes ready by itself once the policy is noeviction.
func TestReplicaRefusesAnEvictingRedis(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisWith(t, testenv.RedisOptions{Args: []string{"--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"}})
	p := startListening(t, nil, "--web.listen-address=127.0.0.1:0", "--storage.redis-url="+redis.URL())
	testenv.WaitFor(t, 30*time.Second, "the eviction policy in the log", func() bool {
		return strings.Contains(p.log(), "maxmemory-policy allkeys-lru")
	})
	if ready(p) {
		t.Fatal("a replica on an evicting Redis is ready")
	}
	if code := post(t, p.url("/webhook"), []byte(fmt.Sprintf(`{"timestamp":%d,"type":"gateway.started","gateway":{"id":"g"}}`,
		time.Now().UnixMilli()))); code != http.StatusServiceUnavailable {
		t.Fatalf("webhook on an evicting Redis: %d, want 503", code)
	}
	redis.CLI("CONFIG", "SET", "maxmemory-policy", "noeviction")
	testenv.WaitFor(t, 30*time.Second, "ready once Redis no longer evicts", func() bool { return ready(p) })
}

// TestHungRedis pauses Redis (SIGSTOP) under load: both replicas turn not
// ready, webhooks are answered (503 or, for an answer Redis gave too late,
// "not confirmed"), and once Redis resumes nothing answered 503 is applied
// and every acknowledged event is there.
func TestHungRedis(t *testing.T) {
	t.Parallel()
	redis, a, b, _, ledger, stop := twoReplicasUnderLoad(t)
	redis.Pause()
	paused := time.Now()
	for _, p := range []*process{a, b} {
		testenv.WaitFor(t, 30*time.Second, "not ready while Redis hangs", func() bool { return !ready(p) })
	}
	t.Logf("both replicas not ready %s after Redis was paused", time.Since(paused).Round(10*time.Millisecond))
	before := ledger.statusCount(http.StatusServiceUnavailable)
	testenv.WaitFor(t, 30*time.Second, "webhooks answered 503 while Redis hangs", func() bool {
		return ledger.statusCount(http.StatusServiceUnavailable) > before+20
	})
	redis.Resume()
	for _, p := range []*process{a, b} {
		testenv.WaitFor(t, 30*time.Second, "ready again", func() bool { return ready(p) })
	}
	ledger.waitAcked(t, ledger.acked()+200)
	stop()
	convergedFleet(t, a, b)
	checkLedger(t, a, ledger)
	checkLedger(t, b, ledger)
	t.Logf("%d acknowledged, %d answered 503 (none applied), %d not confirmed or pending",
		ledger.acked(), ledger.statusCount(http.StatusServiceUnavailable), ledger.statusCount(uncertain))
}

// TestReplicaNotReadyWhileRedisIsFull: a Redis at its maxmemory with
// noeviction refuses writes; the replica turns not ready (rather than ready
// and answering every webhook 503), and ready again once Redis has room.
func TestReplicaNotReadyWhileRedisIsFull(t *testing.T) {
	redis := testenv.StartRedisWith(t, testenv.RedisOptions{Args: []string{"--maxmemory", "4mb", "--maxmemory-policy", "noeviction"}})
	p := startReplica(t, redis.URL())
	var fill []string
	for !strings.Contains(redis.CLI("SETRANGE", fmt.Sprintf("fill:%d", len(fill)), "262143", "x"), "OOM") {
		fill = append(fill, fmt.Sprintf("fill:%d", len(fill)))
	}
	testenv.WaitFor(t, 30*time.Second, "not ready while Redis is full", func() bool { return !ready(p) })
	if !strings.Contains(p.log(), "Redis is out of memory") {
		t.Fatalf("the log does not say why:\n%s", p.log())
	}
	redis.CLI(append([]string{"DEL"}, fill...)...)
	testenv.WaitFor(t, 30*time.Second, "ready once Redis has room", func() bool { return ready(p) })
}

// TestReplicasHealWrongTypesUnderLoad overwrites, under load, each key of
// the shared log with a value of another type: a lost key. Each time both
// replicas count the loss under its cause, rebuild the log and are ready
// again by themselves; the store's answers are logged as what they are
// (never "does not answer": Redis answers); a webhook Redis refused is
// answered "not applied" and is not applied; every acknowledged event is
// there at the end.
func TestReplicasHealWrongTypesUnderLoad(t *testing.T) {
	t.Parallel()
	redis, a, b, _, ledger, stop := twoReplicasUnderLoad(t)
	for _, tc := range []struct {
		cause string
		cmd   []string
	}{
		{"log", []string{"SET", "liveswitch_exporter:log", "garbage"}},
		{"snapshot", []string{"SET", "liveswitch_exporter:snapshot", "x"}},
		{"epoch", []string{"LPUSH", "liveswitch_exporter:epoch", "x"}},
		{"log", []string{"HSET", "liveswitch_exporter:log", "a", "b"}},
	} {
		before := lossCount(t, a, tc.cause)
		redis.Overwrite(tc.cmd...)
		testenv.WaitFor(t, 30*time.Second, tc.cause+" loss counted and both replicas ready", func() bool {
			return lossCount(t, a, tc.cause) == before+1 && lossCount(t, b, tc.cause) == before+1 && ready(a) && ready(b)
		})
		ledger.waitAcked(t, ledger.acked()+100)
	}
	stop()
	convergedFleet(t, a, b)
	checkLedger(t, a, ledger)
	checkLedger(t, b, ledger)
	logs := a.log() + b.log()
	if strings.Contains(logs, "does not answer") {
		t.Error("a replica logged that Redis does not answer; it answered")
	}
	if !strings.Contains(logs, "holds a string, not a stream") {
		t.Error("no log line says what Redis holds at the log's key")
	}
	t.Logf("%d acknowledged, %d answered 503 (none applied), %d not confirmed or pending",
		ledger.acked(), ledger.statusCount(http.StatusServiceUnavailable), ledger.statusCount(uncertain))
}

// TestRebuildLockWithoutExpiryUnderLoad: a rebuild lock written with no
// expiry (by an old version, or a holder that hung before expiries were
// set) refuses every append. The replicas say so on /-/ready while it
// stands, rather than 200 while every webhook is answered 503, give it an
// expiry, and are ready again by themselves; nothing answered 503 is
// applied.
func TestRebuildLockWithoutExpiryUnderLoad(t *testing.T) {
	t.Parallel()
	redis, a, b, _, ledger, stop := twoReplicasUnderLoad(t)
	redis.CLI("SET", "liveswitch_exporter:rebuild", "an-old-replica/0")
	for _, p := range []*process{a, b} {
		testenv.WaitFor(t, 30*time.Second, "not ready while the lock stands", func() bool {
			return !ready(p) || redis.CLI("EXISTS", "liveswitch_exporter:rebuild") == "0"
		})
	}
	if redis.CLI("EXISTS", "liveswitch_exporter:rebuild") == "0" {
		t.Fatal("the lock ended before both replicas were seen not ready")
	}
	testenv.WaitFor(t, 30*time.Second, "the lock expired and both replicas ready", func() bool {
		return redis.CLI("EXISTS", "liveswitch_exporter:rebuild") == "0" && ready(a) && ready(b)
	})
	ledger.waitAcked(t, ledger.acked()+200)
	stop()
	convergedFleet(t, a, b)
	checkLedger(t, a, ledger)
	checkLedger(t, b, ledger)
	if !strings.Contains(a.log()+b.log(), "had no expiry") {
		t.Error("no replica said it gave the lock an expiry")
	}
}
