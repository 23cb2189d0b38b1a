package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

func loadAll(t *testing.T, s storage.Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := s.Load(context.Background(), func(k string, v []byte) error {
		got[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func mustOpen(t *testing.T, dir string) *Pebble {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commit(t *testing.T, s storage.Store, b *storage.Batch) {
	t.Helper()
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// reopen closes s cleanly and opens the store in dir again.
func reopen(t *testing.T, s *Pebble, dir string) *Pebble {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return mustOpen(t, dir)
}

func TestCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"a/1": []byte("1"), "b/2": []byte("2")}})
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"a/1": []byte("3")}, Deletes: []string{"b/2"}})
	s = reopen(t, s, dir)
	defer s.Close()
	if got := loadAll(t, s); !maps.Equal(got, map[string]string{"a/1": "3"}) {
		t.Fatalf("after reopening: %v", got)
	}
}

// TestCleanStopsAndRestartsKeepEveryCommit: whatever the engine holds in
// memory or on disk at a stop, a sequence of stops and restarts with commits
// in between shows every commit (the earlier store lost the commits made
// after a clean restart).
func TestCleanStopsAndRestartsKeepEveryCommit(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{}
	s := mustOpen(t, dir)
	for round := range 6 {
		for i := range 300 {
			b := &storage.Batch{Puts: map[string][]byte{}}
			k := fmt.Sprintf("mediaserver/%d", (round*300+i)%257)
			v := fmt.Sprintf("round %d commit %d %s", round, i, strings.Repeat("x", 200))
			b.Puts[k], want[k] = []byte(v), v
			if i%7 == 0 {
				d := fmt.Sprintf("mediaserver/%d", (i*13)%257)
				if d != k {
					b.Deletes = append(b.Deletes, d)
					delete(want, d)
				}
			}
			commit(t, s, b)
		}
		s = reopen(t, s, dir)
		if got := loadAll(t, s); !maps.Equal(got, want) {
			t.Fatalf("round %d: %d records after reopening, want %d", round, len(got), len(want))
		}
	}
	s.Close()
}

func TestCommitAfterCloseFails(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), &storage.Batch{Puts: map[string][]byte{"a/1": nil}}); err == nil {
		t.Fatal("commit on a closed store succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestCommitRefusedWhenDiskNearlyFull: below the reserve, a commit writes
// nothing and says why; once space is there again, commits work.
func TestCommitRefusedWhenDiskNearlyFull(t *testing.T) {
	dir := t.TempDir()
	free, ok := freeBytes(dir)
	if !ok {
		t.Skip("free space is not known on this system")
	}
	s := mustOpen(t, dir)
	defer s.Close()
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"a/1": []byte("kept")}})
	s.opts.MinFreeBytes = free * 2
	err := s.Commit(context.Background(), &storage.Batch{Puts: map[string][]byte{"a/1": []byte("lost")}})
	if !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("commit with the disk full: %v, want ErrNoSpace", err)
	}
	if got := loadAll(t, s); got["a/1"] != "kept" {
		t.Fatalf("a refused commit changed the store: %v", got)
	}
	s.opts.MinFreeBytes = 1
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"a/1": []byte("new")}})
	if got := loadAll(t, s); got["a/1"] != "new" {
		t.Fatalf("after space came back: %v", got)
	}
}

func TestOpenRefusals(t *testing.T) {
	locked := t.TempDir()
	holder := mustOpen(t, locked)
	defer holder.Close()

	notADir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notADir, "")

	engineGone := storeWith(t, func(dir string) { rmAll(t, filepath.Join(dir, engineDir)) })
	engineEmptied := storeWith(t, func(dir string) {
		rmAll(t, filepath.Join(dir, engineDir))
		if err := os.Mkdir(filepath.Join(dir, engineDir), 0o750); err != nil {
			t.Fatal(err)
		}
	})
	markerTruncated := storeWith(t, func(dir string) { writeFile(t, filepath.Join(dir, markerName), "") })
	markerOfAnother := storeWith(t, func(dir string) {
		other := storeWith(t, func(string) {})
		data, err := os.ReadFile(filepath.Join(other, markerName))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, markerName), string(data))
	})
	manifestMarkerGone := storeWith(t, func(dir string) {
		matches, _ := filepath.Glob(filepath.Join(dir, engineDir, "marker.manifest.*"))
		if len(matches) != 1 {
			t.Fatalf("manifest markers: %v", matches)
		}
		rmAll(t, matches[0])
	})
	foreignEngine := t.TempDir()
	if err := os.Mkdir(filepath.Join(foreignEngine, engineDir), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(foreignEngine, engineDir, "notes.txt"), "not a database")

	for _, tc := range []struct {
		name, dir, says string
		damaged         bool
	}{
		{"already open", locked, "is already open in this process", false},
		{"directory cannot be created", filepath.Join(notADir, "data"), "creating storage directory", false},
		{"database deleted", engineGone, "missing, yet store.json says a store was created here", true},
		{"database emptied", engineEmptied, "missing, yet store.json says", true},
		{"marker truncated", markerTruncated, "not a store marker", true},
		{"marker of another store", markerOfAnother, "names store", true},
		{"manifest marker deleted", manifestMarkerGone, "no marker names the database's current manifest", true},
		{"foreign files where the database belongs", foreignEngine, "no marker names the database's current manifest", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.says) || IsDamaged(err) != tc.damaged {
				t.Fatalf("error %q: want it to say %q, damaged=%v", err, tc.says, tc.damaged)
			}
		})
	}
}

// TestMarkerRewrittenWhenMissing: the database alone is the whole store;
// its marker is written again.
func TestMarkerRewrittenWhenMissing(t *testing.T) {
	dir := storeWith(t, func(dir string) { rmAll(t, filepath.Join(dir, markerName)) })
	s := mustOpen(t, dir)
	defer s.Close()
	if got := loadAll(t, s); got["mediaserver/a"] != "1" {
		t.Fatalf("records: %v", got)
	}
	if m, err := readMarker(filepath.Join(dir, markerName)); err != nil || m == nil {
		t.Fatalf("marker not written again: %v %v", m, err)
	}
}

// TestStartEmptyOnDamage: the damaged files are moved aside, untouched, and
// a new store starts empty.
func TestStartEmptyOnDamage(t *testing.T) {
	dir := storeWith(t, func(dir string) { rmAll(t, filepath.Join(dir, engineDir)) })
	s, err := Open(dir, Options{StartEmptyOnDamage: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := loadAll(t, s); len(got) != 0 {
		t.Fatalf("records in the new store: %v", got)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "damaged-*", markerName))
	if len(aside) != 1 {
		t.Fatalf("damaged store not moved aside: %v", aside)
	}
}

// TestMigrateEarlierLayout converts stores written by the earlier code
// (testdata/legacy, made by its OpenBolt): one killed with a log tail over
// compacted records, one restarted cleanly and then killed, whose newest
// batches are numbered below the records' position.
func TestMigrateEarlierLayout(t *testing.T) {
	crashed := map[string]string{}
	for j := range 150 {
		if j != 7 {
			k := fmt.Sprintf("mediaserver/ms-%d", j)
			crashed[k] = fmt.Sprintf(`{"v":%d,"k":%q}`, 450+j, k)
		}
	}
	renumbered := map[string]string{"gateway/new": `{"v":119,"k":"gateway/new"}`}
	for j := range 10 {
		k := fmt.Sprintf("gateway/gw-%d", j)
		renumbered[k] = fmt.Sprintf(`{"v":%d,"k":%q}`, 110+j, k)
	}
	for name, want := range map[string]map[string]string{"crashed": crashed, "renumbered": renumbered} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, filepath.Join("testdata", "legacy", name), dir)
			s := mustOpen(t, dir)
			if got := loadAll(t, s); !maps.Equal(got, want) {
				t.Fatalf("converted: %d records, want %d\n%v", len(got), len(want), got)
			}
			commit(t, s, &storage.Batch{Puts: map[string][]byte{"gateway/after": []byte("x")}})
			s = reopen(t, s, dir)
			defer s.Close()
			want["gateway/after"] = "x"
			if got := loadAll(t, s); !maps.Equal(got, want) {
				t.Fatalf("after a restart: %d records, want %d", len(got), len(want))
			}
			for _, f := range []string{legacyRecords, legacyLog} {
				if exists(filepath.Join(dir, f)) || !exists(filepath.Join(dir, f+".migrated")) {
					t.Errorf("%s not renamed to .migrated", f)
				}
			}
		})
	}
}

// TestMigrationRefusesDamagedEarlierStore: a damaged file of the earlier
// layout is refused, and nothing is converted.
func TestMigrationRefusesDamagedEarlierStore(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "legacy", "crashed"), dir)
	path := filepath.Join(dir, legacyLog)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data[:8192]))
	s, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("opened")
	}
	if !IsDamaged(err) || !strings.Contains(err.Error(), legacyLog) {
		t.Fatalf("error %q does not name the damaged file", err)
	}
	if exists(filepath.Join(dir, engineDir)) {
		t.Fatal("a database was created from a damaged store")
	}
}

// storeWith creates a store holding one record, closes it and lets damage
// change its files.
func storeWith(t *testing.T, damage func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"mediaserver/a": []byte("1")}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damage(dir)
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func rmAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
}

// TestCrashImageHoldsEveryCommit copies the store's files while it is open,
// as a crash would leave them (every commit synced, nothing flushed, no
// clean close): the copy opens with every committed record.
func TestCrashImageHoldsEveryCommit(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	want := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("mediaserver/%d", i%50)
		want[k] = fmt.Sprint(i)
		commit(t, s, &storage.Batch{Puts: map[string][]byte{k: []byte(want[k])}})
	}
	image := t.TempDir()
	copyDir(t, dir, image)
	rmAll(t, filepath.Join(image, lockName))
	c := mustOpen(t, image)
	defer c.Close()
	if got := loadAll(t, c); !maps.Equal(got, want) {
		t.Fatalf("crash image: %d records, want %d", len(got), len(want))
	}
}

// TestIdleStoreFlushes: once idle, the store writes its memory table to
// sorted files, and what it wrote reopens whole.
func TestIdleStoreFlushes(t *testing.T) {
	defer func(d time.Duration) { idleFlushAfter = d }(idleFlushAfter)
	idleFlushAfter = 50 * time.Millisecond
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	commit(t, s, &storage.Batch{Puts: map[string][]byte{"mediaserver/a": []byte("1")}})
	testenv.WaitFor(t, 10*time.Second, "the idle flush", func() bool { return s.unflushed.Load() == 0 })
	if tables, _ := filepath.Glob(filepath.Join(dir, engineDir, "*.sst")); len(tables) == 0 {
		t.Fatal("no sorted file after the idle flush")
	}
	image := t.TempDir()
	copyDir(t, dir, image)
	rmAll(t, filepath.Join(image, lockName))
	c := mustOpen(t, image)
	defer c.Close()
	if got := loadAll(t, c); got["mediaserver/a"] != "1" {
		t.Fatalf("after the idle flush: %v", got)
	}
}

// badRecord is a CheckRecord that cannot read values starting with "bad".
func badRecord(key string, value []byte) error {
	if strings.HasPrefix(string(value), "bad") {
		return errors.New("not a record")
	}
	return nil
}

// logTo returns a logger writing to buf, which the test reads.
func logTo(buf *testenv.LogBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestUnreadableRecordIsDamage: a record that passes the engine's checksums
// but cannot be read is damage, found before anything is written: refused
// naming the record and a file of the engine, or, with start-empty, moved
// aside.
func TestUnreadableRecordIsDamage(t *testing.T) {
	dir := storeWith(t, func(dir string) {
		s := mustOpen(t, dir)
		commit(t, s, &storage.Batch{Puts: map[string][]byte{"mediaserver/b": []byte("bad record")}})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
	before := listTree(t, dir)
	_, err := Open(dir, Options{CheckRecord: badRecord})
	var d *DamagedError
	if !errors.As(err, &d) || !strings.Contains(d.Problem, `record "mediaserver/b"`) ||
		!strings.HasPrefix(d.File, filepath.Join(dir, engineDir)+string(filepath.Separator)) {
		t.Fatalf("error %v: want a DamagedError naming the record and a file of the engine", err)
	}
	if after := listTree(t, dir); after != before {
		t.Fatalf("a refused store changed:\nbefore %s\nafter  %s", before, after)
	}

	var log testenv.LogBuffer
	s, err := Open(dir, Options{CheckRecord: badRecord, StartEmptyOnDamage: true, Logger: logTo(&log)})
	if err != nil {
		t.Fatal(err)
	}
	e := s.StartedEmpty()
	if got := loadAll(t, s); len(got) != 0 || e == nil || !exists(filepath.Join(e.MovedTo, engineDir)) ||
		!strings.Contains(e.Problem, `record "mediaserver/b"`) {
		t.Fatalf("start-empty: records %v, StartedEmpty %+v", got, e)
	}
	if !strings.Contains(log.String(), "STORE DAMAGED: moved aside") {
		t.Fatalf("no warning:\n%s", log.String())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLaterStartsSayTheStoreStartedEmpty: after start-empty moved a damaged
// store aside, every later start warns, naming where it went; StartedEmpty
// shows while nothing was stored since (a start that moved the store and
// died before storing anything leaves the next one to show it); deleting
// the damaged store's directory ends the warnings.
func TestLaterStartsSayTheStoreStartedEmpty(t *testing.T) {
	dir := storeWith(t, func(dir string) { writeFile(t, filepath.Join(dir, markerName), "garbage") })
	open := func() (*Pebble, string) {
		t.Helper()
		var log testenv.LogBuffer
		s, err := Open(dir, Options{StartEmptyOnDamage: true, Logger: logTo(&log)})
		if err != nil {
			t.Fatal(err)
		}
		return s, log.String()
	}
	s, _ := open()
	moved := s.StartedEmpty()
	if moved == nil {
		t.Fatal("the start that moved the store aside does not say it started empty")
	}
	s.Close()

	for i, tc := range []struct {
		commit      bool
		deleteAside bool
		empty, warn bool
	}{
		{commit: false, empty: true, warn: true}, // nothing stored since the move
		{commit: true, empty: true, warn: true},  // this start stores a record...
		{empty: false, warn: true},               // ...so the next shows the store, still warning
		{deleteAside: true, empty: false, warn: false},
	} {
		if tc.deleteAside {
			rmAll(t, moved.MovedTo)
		}
		s, log := open()
		if got := s.StartedEmpty() != nil; got != tc.empty {
			t.Errorf("start %d: StartedEmpty %v, want %v", i, got, tc.empty)
		}
		warned := strings.Contains(log, "STARTED FROM AN EMPTY STORE") && strings.Contains(log, moved.MovedTo)
		if warned != tc.warn {
			t.Errorf("start %d: warned %v, want %v:\n%s", i, warned, tc.warn, log)
		}
		if tc.commit {
			commit(t, s, &storage.Batch{Puts: map[string][]byte{"mediaserver/new": []byte("1")}})
		}
		s.Close()
	}
}

// TestSlowCheckIsNotDamage: a check that takes long (a slow disk, a paused
// process) says that it goes on, and ends with the store opened.
func TestSlowCheckIsNotDamage(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 10 * time.Millisecond
	dir := storeWith(t, func(string) {})
	var log testenv.LogBuffer
	slow := func(string, []byte) error {
		testenv.WaitFor(t, 10*time.Second, "a progress line", func() bool { return strings.Contains(log.String(), "Still checking the store") })
		return nil
	}
	s, err := Open(dir, Options{CheckRecord: slow, Logger: logTo(&log)})
	if err != nil {
		t.Fatalf("a slow check: %v", err)
	}
	defer s.Close()
	if got := loadAll(t, s); got["mediaserver/a"] != "1" {
		t.Fatalf("records: %v", got)
	}
}

// TestMigrationRefusesUnreadableRecord: the earlier layout had no
// checksums; a record it garbled refuses the conversion, naming the record
// and its file, and leaves every file as it was.
func TestMigrationRefusesUnreadableRecord(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "legacy", "crashed"), dir)
	before := listTree(t, dir)
	garbled := func(key string, _ []byte) error {
		if key == "mediaserver/ms-3" {
			return errors.New("not a record")
		}
		return nil
	}
	s, err := Open(dir, Options{CheckRecord: garbled})
	if err == nil {
		s.Close()
		t.Fatal("converted")
	}
	var d *DamagedError
	if !errors.As(err, &d) || !strings.Contains(d.Problem, `"mediaserver/ms-3"`) || !strings.HasPrefix(filepath.Base(d.File), "liveswitch_exporter.") {
		t.Fatalf("error %v: want a DamagedError naming the record and its file", err)
	}
	if after := listTree(t, dir); after != before {
		t.Fatalf("a refused conversion changed the store:\nbefore %s\nafter  %s", before, after)
	}
	s, err = Open(dir, Options{CheckRecord: garbled, StartEmptyOnDamage: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	aside, _ := filepath.Glob(filepath.Join(dir, "damaged-*", legacyRecords))
	if s.StartedEmpty() == nil || len(aside) != 1 {
		t.Fatalf("start-empty did not move the earlier store aside: %v", aside)
	}
}

// listTree lists the files under dir with their sizes and modes, the lock
// left out.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.Name() != lockName {
			fmt.Fprintf(&b, "%s %d %s; ", rel, info.Size(), info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDamagedFileNamesTheFile: the file an engine's message is about is
// found by its path (the store given as an absolute or a relative path),
// or by its number.
func TestDamagedFileNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000010.sst"), "")
	for _, tc := range []struct{ engine, msg, want string }{
		{dir, "on-disk corruption: " + dir + "/000010.sst; bounds: [a, b]", filepath.Join(dir, "000010.sst")},
		{"data/pebble", "L0: 000010: object size mismatch (data/pebble/000010.sst): 0 (disk) != 860 (MANIFEST)", "data/pebble/000010.sst"},
		{dir, "pebble: file 000010: block 0/1243: crc32c checksum mismatch", filepath.Join(dir, "000010.sst")},
		{dir, "L0: 000012: file 000012 (type sstable) unknown to the objstorage provider: file does not exist", filepath.Join(dir, "000012.sst")},
		{dir, "something else", dir},
	} {
		if got := damagedFile(tc.engine, tc.msg); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.msg, got, tc.want)
		}
	}
}

// TestDamagedOptionsFileIsNamed: the engine's refusals of its OPTIONS file
// name no file; the store finds and names it.
func TestDamagedOptionsFileIsNamed(t *testing.T) {
	for name, garble := range map[string]func(string) string{
		"merger renamed": func(s string) string { return strings.Replace(s, "pebble.concatenate", "pebble.concatenXte", 1) },
		"line garbled":   func(s string) string { return strings.Replace(s, "[Options]\n", "[Options]\n  garbage\n", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			var options string
			dir := storeWith(t, func(dir string) {
				options = newestFile(filepath.Join(dir, engineDir), "OPTIONS-*")
				data, err := os.ReadFile(options)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, options, garble(string(data)))
			})
			_, err := Open(dir, Options{})
			var d *DamagedError
			if !errors.As(err, &d) || d.File != options {
				t.Fatalf("error %v: want a DamagedError naming %s", err, options)
			}
		})
	}
}
