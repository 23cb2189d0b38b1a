package main

import (
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

var damageSeed = flag.Uint64("damage.seed", 0, "seed of TestDamageSweep's damage (0: from the clock)")

// damageExitWithin is how soon a damaged store must stop the exporter.
const damageExitWithin = 10 * time.Second

// damage is one way to damage one file of a store.
type damage struct {
	file, what string
	apply      func(path string) error
}

// damages lists, for every file of the store in dir: 8 bytes flipped in
// every 4 KiB page, truncation to half, to one page and to nothing, and
// deletion.
func damages(t *testing.T, dir string, rng *rand.Rand) []damage {
	t.Helper()
	var out []damage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		size := info.Size()
		for _, page := range pagesOf(rel, size, rng) {
			at := page + rng.Int64N(min(4096, size-page))
			out = append(out, damage{rel, fmt.Sprintf("8 bytes flipped at %d", at), func(p string) error { return flip(p, at, rng.Uint64()|1) }})
		}
		for _, keep := range []int64{size / 2, 4096, 0} {
			if keep < size {
				out = append(out, damage{rel, fmt.Sprintf("truncated to %d bytes", keep), func(p string) error { return os.Truncate(p, keep) }})
			}
		}
		out = append(out, damage{rel, "deleted", os.Remove})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pagesOf lists the offsets of the pages of a file to damage: all of them,
// except that CI samples 24 pages of each write-ahead log file (recycled
// files of 1 MiB, mostly holding records of earlier lives).
func pagesOf(name string, size int64, rng *rand.Rand) []int64 {
	var pages []int64
	for page := int64(0); page < size; page += 4096 {
		pages = append(pages, page)
	}
	if strings.HasSuffix(name, ".log") && len(pages) > 24 && os.Getenv("LIVESWITCH_TEST_LONG") == "" {
		rng.Shuffle(len(pages), func(i, j int) { pages[i], pages[j] = pages[j], pages[i] })
		pages = pages[:24]
	}
	return pages
}

// flip XORs up to 8 bytes from offset at with mask (whose low byte is never 0).
func flip(path string, at int64, mask uint64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i := 0; i < 8 && int(at)+i < len(data); i++ {
		data[int(at)+i] ^= byte(mask>>(8*i)) | 1
	}
	return os.WriteFile(path, data, 0o640)
}

// damageOutcome is how the exporter took one damaged store.
type damageOutcome int

const (
	refused damageOutcome = iota // exit non-zero, one clear line
	exact                        // started with exactly the stored fleet
	logTail                      // started without the newest records of the write-ahead log
)

// TestDamageSweep damages every file of real stores, page by page, and
// starts the real binary on each: it must either refuse within 10 s, with a
// non-zero exit and one error line naming the store's file and what is
// wrong, or start with exactly the stored fleet. Never a panic trace, a
// hang, or another fleet, for a store at rest: stopped cleanly, or killed
// (kill -9) once idle. A store killed under load is swept too: there the
// newest records of the write-ahead log, damaged, cannot be told from a
// write the crash tore, and are dropped (as in any write-ahead-logged
// database); that is counted, and allowed for the log's files only.
// Write-ahead log files are recycled at 1 MiB: CI samples 24 of their pages,
// LIVESWITCH_TEST_LONG=1 sweeps them all.
func TestDamageSweep(t *testing.T) {
	seed := *damageSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: -damage.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, ending := range []string{"stopped cleanly", "killed once idle", "killed under load"} {
		t.Run(ending, func(t *testing.T) {
			pristine := storeEndingWith(t, ending)
			want := storedFleet(t, pristine)
			counts := map[string]*[3]int{}
			for _, d := range damages(t, pristine, rng) {
				if counts[d.file] == nil {
					counts[d.file] = new([3]int)
				}
				outcome := runDamaged(t, pristine, d, want, ending == "killed under load")
				counts[d.file][outcome]++
			}
			reportDamage(t, counts)
		})
	}
}

// storeEndingWith makes a store of 3,000 simulated events whose exporter
// ended as ending says.
func storeEndingWith(t *testing.T, ending string) string {
	t.Helper()
	dir := t.TempDir()
	p := startExporter(t, "--storage.path="+dir, "--server.retention=0", "--log.level=debug")
	simulate := exec.Command(binary, "simulate", "--target", p.url("/webhook"), "--rate=0", "--count=3000",
		"--concurrency=8", "--grow")
	if ending == "killed under load" {
		if err := simulate.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 60*time.Second, "1,500 events", func() bool { return strings.Count(p.log(), "Webhook applied") >= 1500 })
		p.kill(t)
		_ = simulate.Process.Kill() // it would retry for minutes
		_ = simulate.Wait()
		return dir
	}
	if out, err := simulate.CombinedOutput(); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if ending == "stopped cleanly" {
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	testenv.WaitFor(t, 30*time.Second, "the idle flush", func() bool { return strings.Contains(p.log(), "Idle store flushed") })
	p.kill(t)
	return dir
}

func reportDamage(t *testing.T, counts map[string]*[3]int) {
	t.Helper()
	files := make([]string, 0, len(counts))
	for f := range counts {
		files = append(files, f)
	}
	sort.Strings(files)
	var total [3]int
	for _, f := range files {
		c := counts[f]
		t.Logf("%-46s refused %3d, the stored fleet %3d, newest log records dropped %3d", f, c[refused], c[exact], c[logTail])
		for i := range total {
			total[i] += c[i]
		}
	}
	t.Logf("%d damaged stores: %d refused, %d started with the stored fleet, %d dropped the newest log records; no panic, no hang, no other fleet",
		total[0]+total[1]+total[2], total[refused], total[exact], total[logTail])
}

// storedFleet starts the exporter on a copy of the store and returns the
// fleet it shows.
func storedFleet(t *testing.T, dir string) string {
	t.Helper()
	clone := t.TempDir()
	copyTree(t, dir, clone)
	p := startExporter(t, "--storage.path="+clone, "--server.retention=0")
	_, body := get(p.url("/metrics"))
	p.kill(t)
	fleet := fleetSection(body)
	if !strings.Contains(fleet, "liveswitch_server_up{") {
		t.Fatal("the stored fleet is empty")
	}
	return fleet
}

// runDamaged applies d to a copy of the store and starts the exporter on
// it; the test fails unless it refuses clearly or shows want.
func runDamaged(t *testing.T, pristine string, d damage, want string, tornTailPossible bool) damageOutcome {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, pristine, dir)
	if err := d.apply(filepath.Join(dir, d.file)); err != nil {
		t.Fatal(err)
	}
	name := d.file + " " + d.what
	p := launch(t, binary, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir, "--server.retention=0")
	start := time.Now()
	for {
		select {
		case err := <-p.exit:
			p.exit <- err
			checkRefusal(t, name, err, p.log(), dir, time.Since(start))
			return refused
		case <-time.After(10 * time.Millisecond):
		}
		if strings.Contains(p.log(), "Fleet restored; ready") {
			p.addr = <-p.addrc
			_, body := get(p.url("/metrics"))
			p.kill(t)
			got := fleetSection(body)
			switch {
			case got == want:
				return exact
			case tornTailPossible && strings.HasSuffix(d.file, ".log"):
				return logTail
			}
			t.Errorf("%s: started with another fleet (%d lines, want %d)", name, strings.Count(got, "\n"), strings.Count(want, "\n"))
			return exact
		}
		if time.Since(start) > damageExitWithin {
			p.kill(t)
			t.Errorf("%s: neither ready nor exited within %s\n%s", name, damageExitWithin, p.log())
			return refused
		}
	}
}

// checkRefusal checks the way an exporter refused a damaged store.
func checkRefusal(t *testing.T, name string, err error, log, dir string, took time.Duration) {
	t.Helper()
	errors := errorLines(log)
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "SIGBUS", "unexpected fault"} {
		if strings.Contains(log, bad) {
			t.Errorf("%s: the log holds %q:\n%s", name, bad, log)
			return
		}
	}
	switch {
	case err == nil:
		t.Errorf("%s: exit status 0 without serving:\n%s", name, log)
	case took > damageExitWithin:
		t.Errorf("%s: refused after %s", name, took)
	case len(errors) != 1 || !strings.Contains(errors[0], "store damaged: "+dir):
		t.Errorf("%s: want one error line naming the damaged store's file, got:\n%s", name, log)
	}
}

// copyTree copies the files under from into to, skipping the lock.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o750)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}
