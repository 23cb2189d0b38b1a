package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

// refuseWithin is how soon a store the exporter cannot use must stop it.
const refuseWithin = 10 * time.Second

// onDamageModes are the values of --storage.on-damage: a store the
// exporter may not read or write is refused under both, never moved aside.
var onDamageModes = []string{"refuse", "start-empty"}

// movedAside lists the damaged-* directories start-empty made in dir.
func movedAside(t *testing.T, dir string) []string {
	t.Helper()
	aside, err := filepath.Glob(filepath.Join(dir, "damaged-*"))
	if err != nil {
		t.Fatal(err)
	}
	return aside
}

// TestStoreWithoutRightsIsRefused runs the exporter as a user without the
// rights to a part of its store, at rest and killed under load (where
// opening it would replay the write-ahead log into a new file): within 10 s
// it exits non-zero with one line naming that part and the system's
// reason, without a panic trace, leaving the store as it was; start-empty
// does not take it for damage. (A pebble/ directory of mode 555 gave a
// panic trace, and a hang retrying without end under load; a lock file or
// store of mode 000 was said to be locked by another process.)
func TestStoreWithoutRightsIsRefused(t *testing.T) {
	for _, ending := range []string{"stopped cleanly", "killed under load"} {
		for _, tc := range []struct {
			name, part string
			mode       os.FileMode
		}{
			{"pebble directory 555", "pebble", 0o555},
			{"lock file 000", "LOCK", 0o000},
			{"store directory 000", "", 0o000},
			{"marker 000", "store.json", 0o000},
			{"manifest 000", "pebble/MANIFEST-*", 0o000},
		} {
			for _, mode := range onDamageModes {
				t.Run(ending+"/"+tc.name+"/"+mode, func(t *testing.T) {
					dir := storeEndingWith(t, ending)
					cred := asUnprivileged(t, dir)
					parts, _ := filepath.Glob(filepath.Join(dir, tc.part))
					if len(parts) == 0 {
						t.Fatalf("no %s", tc.part)
					}
					parts = parts[len(parts)-1:] // the newest
					before := digest(t, dir)
					if err := os.Chmod(parts[0], tc.mode); err != nil {
						t.Fatal(err)
					}
					code, log := runExporter(t, cred, refuseWithin, "--storage.path="+dir, "--storage.on-damage="+mode)
					checkOneLineRefusal(t, tc.name, code, log, parts[0]+": ", "permission denied")
					if strings.Contains(log, "locked by another") || strings.Contains(log, "damaged") {
						t.Errorf("%s taken for a lock held or for damage:\n%s", tc.name, log)
					}
					if err := os.Chmod(parts[0], 0o750); err != nil {
						t.Fatal(err)
					}
					if after := digest(t, dir); after != before || len(movedAside(t, dir)) != 0 {
						t.Errorf("the refused start changed the store")
					}
				})
			}
		}
	}
}

// TestReadOnlyStoreIsRefused: a store on a file system mounted read-only is
// refused with one line saying so, never taken for damage or a lock held.
func TestReadOnlyStoreIsRefused(t *testing.T) {
	mnt := mountTmpfs(t, "96m")
	dir := filepath.Join(mnt, "store")
	p := startExporter(t, "--storage.path="+dir)
	feedSimulated(t, p, 50)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	for _, mode := range onDamageModes {
		code, log := runExporter(t, nil, refuseWithin, "--storage.path="+dir, "--storage.on-damage="+mode)
		checkOneLineRefusal(t, "read-only, "+mode, code, log, dir, "read-only file system")
		if strings.Contains(log, "locked by another") || strings.Contains(log, "damaged") {
			t.Errorf("a read-only file system taken for a lock held or for damage:\n%s", log)
		}
	}
}

// bigStore makes a store of n servers through the fleet's own writer, so
// that checking it takes a while.
func bigStore(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := writer.New(fleet.New(), store, writer.Options{
		Decode: event.DecodeOptions{MaxEvents: 1000, MaxFutureSkew: time.Hour}})
	stamp := time.Now().Add(-time.Minute).UnixMilli()
	for batch := range n / 1000 {
		var b strings.Builder
		b.WriteByte('[')
		for i := range 1000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.registered","mediaserver":{"id":"ms-%d-%d"}}`,
				stamp, batch, i)
		}
		b.WriteByte(']')
		if _, err := w.Ingest(context.Background(), []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pausedFor is how long TestPausedCheckIsNotDamage pauses the exporter:
// longer than the deadline (8 s) that once called a slow check damage.
const pausedFor = 9 * time.Second

// TestPausedCheckIsNotDamage pauses the exporter (SIGSTOP, as a throttled
// container or a stalled disk does) while it checks its store, for longer
// than the deadline that once called such a store damaged (and had
// start-empty throw it away): once resumed, it finishes the check and
// serves the whole fleet. CI pauses it under start-empty (where a false
// damage costs the store); LIVESWITCH_TEST_LONG=1 under refuse too.
func TestPausedCheckIsNotDamage(t *testing.T) {
	t.Parallel()
	const servers = 40000
	pristine := bigStore(t, servers)
	modes := []string{"start-empty"}
	if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
		modes = onDamageModes
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				dir := t.TempDir()
				copyTree(t, pristine, dir)
				p := launch(t, binary, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir, "--server.max=0",
					"--storage.on-damage="+mode)
				waitForLine(t, p, checkingLine)
				p.signal(t, syscall.SIGSTOP)
				waitStopped(t, p)
				// The fault itself: the process stays paused this long. By
				// its end, all it wrote before the pause has been read.
				time.Sleep(pausedFor)
				caught := !strings.Contains(p.log(), "Store checked")
				p.signal(t, syscall.SIGCONT)
				if !caught {
					p.kill(t)
					if attempt == 5 {
						t.Fatal("the check ended before the pause, five times: the store is too small to catch it")
					}
					continue
				}
				testenv.WaitFor(t, 60*time.Second, "ready or exited", func() bool {
					return strings.Contains(p.log(), "Fleet restored; ready") || p.cmd.ProcessState != nil || len(refusalLines(p.log())) > 0
				})
				log := p.log()
				if !strings.Contains(log, fmt.Sprintf("servers=%d", servers)) || strings.Contains(log, "damaged") ||
					len(movedAside(t, dir)) != 0 {
					t.Fatalf("after a pause of %s in the check: not ready with %d servers, or damage claimed:\n%s", pausedFor, servers, log)
				}
				t.Logf("paused %s during the check (attempt %d): served all %d servers, no damage claimed", pausedFor, attempt, servers)
				return
			}
		})
	}
}

// checkingLine is what the exporter logs as it starts checking its store.
const checkingLine = "Checking the store"

// waitForLine waits until p logged a line holding s, looking every
// millisecond, so that what follows lands right after it.
func waitForLine(t *testing.T, p *process, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no line saying %q within 60s:\n%s", s, p.log())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSignalDuringCheckStops: the check has no deadline any more, so a
// SIGTERM while it runs must still end the start, at once and cleanly.
func TestSignalDuringCheckStops(t *testing.T) {
	dir := bigStore(t, 40000)
	p := launch(t, binary, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir, "--server.max=0")
	waitForLine(t, p, checkingLine)
	p.signal(t, syscall.SIGSTOP) // held in the check until the signal is there
	waitStopped(t, p)
	p.signal(t, syscall.SIGTERM)
	p.signal(t, syscall.SIGCONT)
	select {
	case err := <-p.exit:
		p.exit <- err
		if err != nil || !strings.Contains(p.log(), "Stopped while opening the store") || strings.Contains(p.log(), "Fleet restored") {
			t.Fatalf("SIGTERM during the check: %v, want a clean exit saying so:\n%s", err, p.log())
		}
	case <-time.After(refuseWithin):
		t.Fatalf("SIGTERM during the check did not end the start within %s:\n%s", refuseWithin, p.log())
	}
}

// waitStopped waits until the kernel shows p stopped.
func waitStopped(t *testing.T, p *process) {
	t.Helper()
	stat := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	testenv.WaitFor(t, 10*time.Second, "the process to be stopped", func() bool {
		data, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(data), ") ")
		return strings.HasPrefix(rest, "T")
	})
}

// startedEmpty reads liveswitch_exporter_storage_started_empty.
func startedEmpty(t *testing.T, p *process) float64 {
	t.Helper()
	f := scrape(t, p)["liveswitch_exporter_storage_started_empty"]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatal("no liveswitch_exporter_storage_started_empty")
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// TestStartEmptySaysSo: start-empty moves a damaged store aside and says so
// loudly; every later start says, at WARN level, that the store began
// empty, naming the damage and where it was moved, until that directory is
// deleted; liveswitch_exporter_storage_started_empty is 1 for the start
// that moved it and for a later one while nothing was stored since. (A
// later start once came up with no servers and no word.)
func TestStartEmptySaysSo(t *testing.T) {
	dir := storeEndingWith(t, "stopped cleanly")
	if err := os.WriteFile(filepath.Join(dir, "store.json"), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	args := []string{"--storage.path=" + dir, "--storage.on-damage=start-empty"}
	p := startExporter(t, args...)
	aside := movedAside(t, dir)
	if len(aside) != 1 || !strings.Contains(p.log(), "level=WARN") || !strings.Contains(p.log(), "STORE DAMAGED: moved aside") ||
		startedEmpty(t, p) != 1 {
		t.Fatalf("the start that moved the store aside: %v\n%s", aside, p.log())
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		feed, deleteAside bool
		gauge             float64
		warn              bool
	}{
		{feed: true, gauge: 1, warn: true}, // nothing was stored since the move; this start stores
		{gauge: 0, warn: true},
		{deleteAside: true, gauge: 0, warn: false},
	} {
		if tc.deleteAside {
			if err := os.RemoveAll(aside[0]); err != nil {
				t.Fatal(err)
			}
		}
		p := startExporter(t, args...)
		warned := strings.Contains(p.log(), "STARTED FROM AN EMPTY STORE") && strings.Contains(p.log(), aside[0])
		if got := startedEmpty(t, p); got != tc.gauge || warned != tc.warn {
			t.Errorf("start %d: started_empty %v (want %v), warned %v (want %v):\n%s", i+2, got, tc.gauge, warned, tc.warn, p.log())
		}
		if tc.feed {
			feedSimulated(t, p, 20)
		}
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// garbledRecord is a server record that no checksum can find wrong.
const garbledRecord = `{"info":{"id":"garbled"`

// TestUnreadableRecordIsDamage: a record that passes every checksum but
// cannot be read, in the embedded store or in a store of the earlier layout
// (bbolt, without checksums), is damage: refused in one line naming it,
// the store left as it was (an earlier store is not converted), or moved
// aside by start-empty. (The earlier store was converted, its files renamed,
// and every later start failed on the record, start-empty included.)
func TestUnreadableRecordIsDamage(t *testing.T) {
	pristine := storeEndingWith(t, "stopped cleanly")
	s, err := embedded.Open(pristine, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	records := map[string][]byte{}
	if err := s.Load(context.Background(), func(k string, v []byte) error { records[k] = bytes.Clone(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), &storage.Batch{Puts: map[string][]byte{"mediaserver/garbled": []byte(garbledRecord)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	records["mediaserver/garbled"] = []byte(garbledRecord)
	legacy := t.TempDir()
	writeLegacyStore(t, legacy, records)

	for _, tc := range []struct{ name, dir, file string }{
		{"embedded store", pristine, filepath.Join(pristine, "pebble") + "/"},
		{"earlier layout", legacy, filepath.Join(legacy, "liveswitch_exporter.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, tc.dir, dir)
			file := strings.Replace(tc.file, tc.dir, dir, 1)
			before := digest(t, dir)
			code, log := runToExit(t, "--storage.path="+dir)
			checkOneLineRefusal(t, tc.name, code, log, "store damaged: "+file, "record", "mediaserver/garbled")
			if digest(t, dir) != before {
				t.Error("the refused start changed the store")
			}
			p := startExporter(t, "--storage.path="+dir, "--storage.on-damage=start-empty")
			if len(movedAside(t, dir)) != 1 || startedEmpty(t, p) != 1 || !strings.Contains(p.log(), `mediaserver/garbled`) {
				t.Errorf("start-empty did not move the store aside, saying why:\n%s", p.log())
			}
		})
	}
}

// writeLegacyStore writes records as the exporter's earlier layout kept
// them: a bbolt file with a bucket of records.
func writeLegacyStore(t *testing.T, dir string, records map[string][]byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "liveswitch_exporter.db"), 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("servers"))
		if err != nil {
			return err
		}
		for k, v := range records {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
}
