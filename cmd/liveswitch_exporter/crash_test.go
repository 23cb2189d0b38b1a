package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

var (
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of TestCrashSequences, to replay a failing sequence (0: from the clock)")
	crashRounds = flag.Int("crash.rounds", 0, "rounds of TestCrashSequences (0: 5, or 30 with LIVESWITCH_TEST_LONG=1)")
)

// crashSenders post concurrently in every round: enough that commits are
// shared by groups of requests, and that a kill lands in the middle of some.
const crashSenders, crashServersPerSender = 16, 4

// crashStep is one way a run of the exporter can end.
type crashStep struct {
	name string
	run  func(c *crashRun, p *process)
}

// crashRun is the state of TestCrashSequences: one store, one ledger, one
// seeded random source, many runs of the exporter.
type crashRun struct {
	t      *testing.T
	rng    *rand.Rand
	dir    string
	args   []string
	ledger *ackLedger
	base   int64
	counts map[string]int
}

var crashSteps = []crashStep{
	{"SIGTERM under load", func(c *crashRun, p *process) {
		stop := c.load(p)
		if err := p.stop(); err != nil {
			c.t.Errorf("SIGTERM under load: %v", err)
		}
		stop()
	}},
	{"kill -9 under load", func(c *crashRun, p *process) {
		stop := c.load(p)
		p.kill(c.t)
		stop()
	}},
	{"kill -9 during the shutdown", func(c *crashRun, p *process) {
		stop := c.load(p)
		p.signal(c.t, syscall.SIGTERM)
		testenv.WaitFor(c.t, 30*time.Second, "the shutdown to begin", func() bool {
			return strings.Contains(p.log(), "Shutting down")
		})
		p.kill(c.t)
		stop()
	}},
	{"kill -9 right after an idle flush", func(c *crashRun, p *process) {
		tables := c.tables()
		stop := c.load(p)
		stop()
		testenv.WaitFor(c.t, 30*time.Second, "the idle store to flush", func() bool { return c.tables() != tables })
		p.kill(c.t)
	}},
	{"start refused for a bad flag", func(c *crashRun, p *process) {
		stop := c.load(p)
		stop()
		if err := p.stop(); err != nil {
			c.t.Errorf("SIGTERM: %v", err)
		}
		before := digest(c.t, c.dir)
		for _, bad := range badFlagSets(c.t) {
			code, out := runToExit(c.t, append(append([]string{}, c.args...), bad...)...)
			checkOneLineRefusal(c.t, strings.Join(bad, " "), code, out)
		}
		if after := digest(c.t, c.dir); after != before {
			c.t.Error("a start refused for a bad flag changed the store's files")
		}
	}},
	{"kill -9 while restoring", func(c *crashRun, p *process) {
		stop := c.load(p)
		p.kill(c.t)
		stop()
		q := startListening(c.t, nil, c.args...)
		q.kill(c.t)
	}},
}

// load starts the senders against p and waits for a random number of
// acknowledgements; the returned stop ends the senders.
func (c *crashRun) load(p *process) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for s := range crashSenders {
		wg.Go(func() {
			sendUntilStopped(func() string { return p.url("/webhook") }, c.ledger, s, crashServersPerSender, c.base, done)
		})
	}
	c.ledger.waitAcked(c.t, c.ledger.acked()+20+c.rng.IntN(3000))
	return func() { close(done); wg.Wait() }
}

// tables lists the store's sorted files: a new one appears when the engine
// flushes.
func (c *crashRun) tables() string {
	names, _ := filepath.Glob(filepath.Join(c.dir, "pebble", "*.sst"))
	return strings.Join(names, " ")
}

// TestCrashSequences runs the real binary on one store through a random
// sequence of endings — SIGTERM under load, kill -9 under load, during the
// shutdown, right after an idle flush, while restoring, and starts refused
// for a bad flag — with 16 concurrent senders, and checks after every
// restart that every event acknowledged with 2xx is reflected exactly.
// -crash.seed replays a sequence; LIVESWITCH_TEST_LONG=1 runs 30 rounds.
func TestCrashSequences(t *testing.T) {
	seed, rounds := *crashSeed, *crashRounds
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	if rounds == 0 {
		rounds = 5
		if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
			rounds = 30
		}
	}
	t.Logf("seed %d, %d rounds (replay: go test ./cmd/liveswitch_exporter -run TestCrashSequences -crash.seed=%d -crash.rounds=%d)",
		seed, rounds, seed, rounds)
	dir := t.TempDir()
	c := &crashRun{t: t, rng: rand.New(rand.NewPCG(seed, 0)), dir: dir, ledger: newAckLedger(),
		args: []string{"--web.listen-address=127.0.0.1:0", "--storage.path=" + dir, "--server.retention=0"},
		base: time.Now().Add(-10 * time.Minute).UnixMilli(), counts: map[string]int{}}
	checked := 0
	for round := range rounds {
		p := startExporterEnv(t, nil, c.args...)
		checked = checkLedger(t, p, c.ledger)
		if t.Failed() {
			t.Fatalf("after round %d: acknowledged events lost (seed %d)", round, seed)
		}
		step := crashSteps[c.rng.IntN(len(crashSteps))]
		c.counts[step.name]++
		step.run(c, p)
	}
	p := startExporterEnv(t, nil, c.args...)
	checked = checkLedger(t, p, c.ledger)
	if t.Failed() {
		t.Fatalf("after the last round: acknowledged events lost (seed %d)", seed)
	}
	if checked == 0 {
		t.Fatal("no event was acknowledged")
	}
	t.Logf("%d rounds %v: %d events acknowledged and present, %d answered 503, %d unanswered; 0 lost",
		rounds, c.counts, checked, c.ledger.statusCount(503), c.ledger.statusCount(0))
}

// digest sums every file under dir, names and contents, but for an empty
// lock file, which holds nothing of the store (opening a store locks it
// before it looks at anything, creating the file if need be).
func digest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err == nil && d.Name() == "LOCK" && info.Size() == 0 {
			return nil
		}
		data, err := os.ReadFile(path)
		fmt.Fprintf(h, "%s %d\n", path, len(data))
		h.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// sendSequential posts n events, one at a time, to servers of its own
// (prefix), recording each in the ledger, and fails unless all are
// acknowledged.
func sendSequential(t *testing.T, p *process, l *ackLedger, prefix string, n int, base int64) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i%8)
		index, ev := l.send(id, base)
		body := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":%q}}`, ev.ms, ev.action, id)
		status := post(t, p.url("/webhook"), []byte(body))
		l.answered(id, index, status)
		if status != 204 {
			t.Fatalf("event %d answered %d", i, status)
		}
	}
}

// TestCleanRestartsKeepEveryEvent: start, 20 events, SIGTERM, start, 20
// more, SIGTERM, start: all 40 are there. (The earlier store numbered the
// commits after a clean restart below the compacted ones and lost them.)
func TestCleanRestartsKeepEveryEvent(t *testing.T) {
	dir, l, base := t.TempDir(), newAckLedger(), time.Now().Add(-time.Minute).UnixMilli()
	for round := range 2 {
		p := startExporter(t, "--storage.path="+dir)
		sendSequential(t, p, l, fmt.Sprintf("round%d", round), 20, base)
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if n := checkLedger(t, startExporter(t, "--storage.path="+dir), l); n != 40 {
		t.Fatalf("%d acknowledged events checked, want 40", n)
	}
}

// TestKillAfterIdleKeepsEveryEvent: start, 512 events, idle until the store
// flushed, kill -9, start, 20 events, kill -9, start: all 532 are there.
// (The earlier store's idle compaction emptied its log, and the 20 were
// lost.)
func TestKillAfterIdleKeepsEveryEvent(t *testing.T) {
	dir, l, base := t.TempDir(), newAckLedger(), time.Now().Add(-time.Minute).UnixMilli()
	p := startExporter(t, "--storage.path="+dir)
	sendSequential(t, p, l, "first", 512, base)
	testenv.WaitFor(t, 30*time.Second, "the idle flush", func() bool {
		tables, _ := filepath.Glob(filepath.Join(dir, "pebble", "*.sst"))
		return len(tables) > 0
	})
	p.kill(t)
	p = startExporter(t, "--storage.path="+dir)
	sendSequential(t, p, l, "second", 20, base)
	p.kill(t)
	if n := checkLedger(t, startExporter(t, "--storage.path="+dir), l); n != 532 {
		t.Fatalf("%d acknowledged events checked, want 532", n)
	}
}
