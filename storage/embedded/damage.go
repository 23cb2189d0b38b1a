package embedded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2/record"
)

// DamagedError reports a store that cannot be trusted: a file that is
// missing, truncated, fails its checksums, does not belong with the others,
// or holds a record the exporter cannot read. The exporter refuses to start
// on it (or, when the operator asked for it, moves it aside and starts
// empty): a smaller or older fleet shown as if it were the truth would page
// people wrongly.
//
// Only what the store's files say is damage; a file that cannot be read
// (permissions, a read-only or failing disk) or a read that is slow is not,
// and is reported as a plain error instead, so that start-empty never moves
// a healthy store aside.
type DamagedError struct {
	// File is the path of the damaged file (or directory, when a part of
	// the store is missing).
	File string
	// Problem says what is wrong, in a few words.
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store damaged: %s: %s", e.File, e.Problem)
}

// IsDamaged reports whether err says the store is damaged.
func IsDamaged(err error) bool {
	var d *DamagedError
	return errors.As(err, &d)
}

// panicError is a panic of code reading the store, recovered. It keeps the
// first panic's value: a panic that a cleanup raised while unwinding (a
// database closed with an iterator still open) must not hide it.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprint(e.value) }

// Unwrap exposes a panic's error, so that a cause the engine gave (a
// permission refused) can still be told from damage.
func (e *panicError) Unwrap() error {
	err, _ := e.value.(error)
	return err
}

// guarded runs fn, which reads the store's files, turning what damaged files
// can cause into an error: a panic (the engine's, or one of its invariants
// broken by a damaged file), or a memory fault (a file truncated under a
// mapping). It sets no deadline: a slow disk or a paused process is not
// damage, and the read goes on as long as it takes (the caller says that it
// does).
func guarded(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				done <- &panicError{value: r}
			}
		}()
		done <- fn()
	}()
	return <-done
}

// notDamage reports whether err says nothing about the store's files: the
// system refused or failed to read or write them (permissions, a read-only
// file system, an I/O error, a lock held, no memory or file descriptors).
// Such a store is refused, never moved aside.
func notDamage(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.EIO, syscall.EAGAIN,
		syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, syscall.ENOSPC, syscall.EINTR, syscall.EBUSY} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// unreadableError is a store the system would not let the exporter read or
// write: not damage, but a refusal naming the file and the system's cause.
func unreadableError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot use the store: %s: %s: %w", pe.Path, opWord(pe.Op), pe.Err)
	}
	return fmt.Errorf("cannot use the store: %w", err)
}

// opWord turns a system call's name into what it was for.
func opWord(op string) string {
	switch op {
	case "open", "openat":
		return "opening it"
	case "read", "pread":
		return "reading it"
	case "write", "pwrite":
		return "writing it"
	}
	return op
}

// fileNumRE finds a file number (000012) an engine's error names.
var fileNumRE = regexp.MustCompile(`\b(?:file|table|sstable|backing file|manifest file|log|wal)\s*"?(?:MANIFEST-)?(\d{6,})`)

// damagedFile names the file of engineDir that an engine's message is
// about: the longest path inside engineDir the message holds, else the
// file whose number it names (present or not), else engineDir itself.
func damagedFile(engineDir, msg string) string {
	best := ""
	prefix := engineDir + string(filepath.Separator)
	for rest := msg; ; {
		i := strings.Index(rest, prefix)
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := strings.IndexAny(rest, " ()\"':;,")
		if end < 0 {
			end = len(rest)
		}
		if p := rest[:end]; len(p) > len(prefix) && len(p) > len(best) {
			best = p
		}
		rest = rest[len(prefix):]
	}
	if best != "" {
		return best
	}
	if m := fileNumRE.FindStringSubmatch(msg); m != nil {
		if path := fileNumbered(engineDir, m[1]); path != "" {
			return path
		}
		if strings.Contains(msg, "sstable") {
			return filepath.Join(engineDir, m[1]+".sst")
		}
	}
	return engineDir
}

// fileNumbered returns the file of dir whose name carries number num
// (000012.sst, 000012.log, MANIFEST-000012, ...), or "".
func fileNumbered(dir, num string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, num+".") || name == "MANIFEST-"+num {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// newestFile returns the file of dir matching pattern whose name sorts
// last (the engine numbers its files in order), or "".
func newestFile(dir, pattern string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(matches) == 0 {
		return ""
	}
	slices.Sort(matches)
	return matches[len(matches)-1]
}

// walDamage finds the write-ahead log file of engineDir whose records break
// off before its end, and where, reading each as the engine replays it: an
// invalid or zeroed chunk that records after it show should be valid, or
// an older log that ends in the middle of a record (only the newest may,
// its last write torn by a crash).
func walDamage(engineDir string) (*DamagedError, bool) {
	logs, _ := filepath.Glob(filepath.Join(engineDir, "*.log"))
	slices.Sort(logs)
	for i, path := range logs {
		num, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".log"), 10, 64)
		if err != nil {
			continue
		}
		offset, err := readWAL(path, num)
		switch {
		case errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) ||
			(errors.Is(err, record.ErrUnexpectedEOF) && i < len(logs)-1):
			return &DamagedError{File: path, Problem: fmt.Sprintf(
				"write-ahead log damaged at offset %d (%v): records follow that the engine cannot reach", offset, err)}, true
		}
	}
	return nil, false
}

// readWAL reads every record of the write-ahead log at path, numbered num,
// and returns where reading stopped and why (io.EOF at a clean end).
func readWAL(path string, num uint64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := newWALReader(record.NewReader, f, num)
	for {
		rec, err := r.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		if err != nil {
			return r.Offset(), err
		}
	}
}

// newWALReader calls the engine's record.NewReader with a log number of the
// engine's own (internal) type.
func newWALReader[N ~uint64](newReader func(io.Reader, N) *record.Reader, r io.Reader, num uint64) *record.Reader {
	return newReader(r, N(num))
}

// flatError keeps only the message of an engine's error. Pebble's errors
// print stack traces and details under %+v, which is how log/slog's text
// handler formats errors; the exporter's log lines stay one line each.
type flatError struct {
	msg string
	err error
}

func (e *flatError) Error() string { return e.msg }
func (e *flatError) Unwrap() error { return e.err }

// flat returns err with its message only (nil for nil).
func flat(err error) error {
	if err == nil {
		return nil
	}
	return &flatError{msg: firstLine(err.Error()), err: err}
}
