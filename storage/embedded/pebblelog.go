package embedded

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// pebbleLogger routes the engine's messages to the exporter's log: routine
// ones at debug level, errors as warnings.
//
// Pebble calls Fatalf when it cannot go on (a write-ahead log it could not
// write, an invariant a damaged file broke) and expects the process to end.
// While the store is being opened and checked, Fatalf panics, and guarded
// turns the panic into an error (damage, unless its cause is the system's);
// once the store serves, it calls onFatal, which the program sets to log one
// line and exit.
type pebbleLogger struct {
	logger  *slog.Logger
	serving atomic.Bool
	onFatal func(error)
}

func (l *pebbleLogger) Infof(format string, args ...any) {
	l.logger.Debug("pebble: " + firstLine(fmt.Sprintf(format, args...)))
}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.logger.Warn("pebble: " + firstLine(fmt.Sprintf(format, args...)))
}

// firstLine keeps a message to one line: the engine's errors append their
// causes and stack traces on the lines after.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (l *pebbleLogger) Fatalf(format string, args ...any) {
	err := &fatalError{msg: firstLine(fmt.Sprintf(format, args...))}
	for _, a := range args {
		if cause, ok := a.(error); ok {
			err.cause = cause
			break
		}
	}
	if l.serving.Load() && l.onFatal != nil {
		l.onFatal(err)
		return
	}
	panic(err)
}

// fatalError is what the engine could not go on from. It keeps the engine's
// cause, so that a permission refused or a read-only file system is told
// from damage.
type fatalError struct {
	msg   string
	cause error
}

func (e *fatalError) Error() string { return "storage engine failed: " + e.msg }
func (e *fatalError) Unwrap() error { return e.cause }
