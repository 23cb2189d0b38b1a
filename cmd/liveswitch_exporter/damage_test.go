package main

import (
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
			// The mask is drawn now, not when the damage is applied: a store
			// damaged again (the start-empty rerun) must get the same bytes.
			at, mask := page+rng.Int64N(min(4096, size-page)), rng.Uint64()|1
			out = append(out, damage{rel, fmt.Sprintf("8 bytes flipped at %d", at), func(p string) error { return flip(p, at, mask) }})
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

// sampleDamages keeps, unless LIVESWITCH_TEST_LONG is set, a sample of ds
// that still touches every file: per file, one damage, a page flipped or a
// truncation or deletion, chosen by rng (the seed replays it; each run
// samples others). The default suite stays within minutes; the long mode
// sweeps every page.
func sampleDamages(ds []damage, rng *rand.Rand) []damage {
	if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
		return ds
	}
	type kinds struct{ flips, cuts []damage }
	byFile := map[string]*kinds{}
	var files []string
	for _, d := range ds {
		k := byFile[d.file]
		if k == nil {
			k = &kinds{}
			byFile[d.file] = k
			files = append(files, d.file)
		}
		if strings.Contains(d.what, "flipped") {
			k.flips = append(k.flips, d)
		} else {
			k.cuts = append(k.cuts, d)
		}
	}
	var out []damage
	for _, f := range files {
		group := byFile[f].cuts
		if len(byFile[f].flips) > 0 && (len(group) == 0 || rng.IntN(2) == 0) {
			group = byFile[f].flips
		}
		out = append(out, group[rng.IntN(len(group))])
	}
	return out
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
// The default run damages each file once (a page flipped, or a
// truncation or deletion, chosen by the seed); LIVESWITCH_TEST_LONG=1
// sweeps every page of every file.
//
// The refused stores and one in four of the others (all of them with
// LIVESWITCH_TEST_LONG=1) are started again with
// --storage.on-damage=start-empty: a refused one must be moved aside and
// the exporter start empty, saying so; one that started with the stored
// fleet must start with it again, never moved aside.
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
			startEmptyRuns := 0
			for _, d := range sampleDamages(damages(t, pristine, rng), rng) {
				if counts[d.file] == nil {
					counts[d.file] = new([3]int)
				}
				outcome := runDamaged(t, pristine, d, want, ending == "killed under load")
				counts[d.file][outcome]++
				if os.Getenv("LIVESWITCH_TEST_LONG") != "" || outcome == refused || rng.IntN(4) == 0 {
					runDamagedStartEmpty(t, pristine, d, want, outcome)
					startEmptyRuns++
				}
			}
			reportDamage(t, counts)
			t.Logf("%d of them started again with --storage.on-damage=start-empty: the refused moved aside, the others kept", startEmptyRuns)
		})
	}
}

// pristineStores holds, for the whole run, one store per ending, made once.
var pristineStores = map[string]string{}

// storeEndingWith returns a copy of a store of 3,000 simulated events whose
// exporter ended as ending says: "stopped cleanly", "killed once idle" or
// "killed under load" (whose write-ahead log holds what its sorted files
// do not).
func storeEndingWith(t *testing.T, ending string) string {
	t.Helper()
	pristine, ok := pristineStores[ending]
	if !ok {
		made := makeStoreEndingWith(t, ending)
		pristine = filepath.Join(filepath.Dir(binary), "stores", strings.ReplaceAll(ending, " ", "-"))
		copyTree(t, made, pristine)
		pristineStores[ending] = pristine
	}
	dir := t.TempDir()
	copyTree(t, pristine, dir)
	return dir
}

// makeStoreEndingWith makes the store of storeEndingWith.
func makeStoreEndingWith(t *testing.T, ending string) string {
	t.Helper()
	dir := t.TempDir()
	p := startExporter(t, "--storage.path="+dir, "--server.retention=0", "--log.level=debug")
	simulate := testenv.DieWithTest(exec.Command(binary, "simulate", "--target", p.url("/webhook"), "--rate=0", "--count=3000",
		"--concurrency=8", "--grow"))
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

// damagedCopy applies d to a copy of the store.
func damagedCopy(t *testing.T, pristine string, d damage) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, pristine, dir)
	if err := d.apply(filepath.Join(dir, d.file)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runDamagedStartEmpty starts the exporter with start-empty on a copy of
// the store damaged by d, which the default refused (outcome refused) or
// not: a refused store must be moved aside, the exporter start empty and
// say so (WARN, and the started_empty gauge); another must not be moved.
func runDamagedStartEmpty(t *testing.T, pristine string, d damage, want string, outcome damageOutcome) {
	t.Helper()
	dir := damagedCopy(t, pristine, d)
	name := d.file + " " + d.what + " (start-empty)"
	p := launch(t, binary, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir, "--server.retention=0",
		"--storage.on-damage=start-empty")
	start := time.Now()
	for !strings.Contains(p.log(), "Fleet restored; ready") {
		select {
		case err := <-p.exit:
			p.exit <- err
			t.Errorf("%s: exited (%v) instead of serving:\n%s", name, err, p.log())
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(start) > damageExitWithin {
			p.kill(t)
			t.Errorf("%s: not ready within %s\n%s", name, damageExitWithin, p.log())
			return
		}
	}
	p.addr = <-p.addrc
	gauge := startedEmpty(t, p)
	_, body := get(p.url("/metrics"))
	p.kill(t)
	moved := len(movedAside(t, dir)) == 1 && strings.Contains(p.log(), "STORE DAMAGED: moved aside")
	switch {
	case outcome == refused && (!moved || gauge != 1 || strings.Contains(fleetSection(body), "liveswitch_server_up{")):
		t.Errorf("%s: refused by default, yet not moved aside and started empty, saying so (gauge %v):\n%s", name, gauge, p.log())
	case outcome != refused && (moved || gauge != 0):
		t.Errorf("%s: started by default, yet moved aside (gauge %v):\n%s", name, gauge, p.log())
	case outcome == exact && fleetSection(body) != want:
		t.Errorf("%s: started with another fleet than by default", name)
	}
}

// runDamaged applies d to a copy of the store and starts the exporter on
// it; the test fails unless it refuses clearly or shows want.
func runDamaged(t *testing.T, pristine string, d damage, want string, tornTailPossible bool) damageOutcome {
	t.Helper()
	dir := damagedCopy(t, pristine, d)
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
	case len(errors) != 1 || !namesFileAndCause(errors[0], dir):
		t.Errorf("%s: want one error line naming the damaged file of the store and what is wrong with it, got:\n%s", name, log)
	}
}

// damagedRE is a refusal of a damaged store: the file, then the problem.
var damagedRE = regexp.MustCompile(`store damaged: (/[^:"]+): (.+)`)

// namesFileAndCause reports whether a refusal names a file under the store
// in dir (not the store's directory, nor its engine's directory alone) and
// a cause (not a panic's echo that lost it).
func namesFileAndCause(line, dir string) bool {
	m := damagedRE.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	file, cause := filepath.Clean(m[1]), strings.TrimSpace(m[2])
	return strings.HasPrefix(file, dir+string(filepath.Separator)) && file != filepath.Join(dir, "pebble") &&
		len(cause) > 10 && !strings.Contains(cause, "outstanding references")
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
