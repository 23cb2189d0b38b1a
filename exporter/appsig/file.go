package appsig

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// reloadErrorInterval spaces the log lines of a secrets file that stays
// broken: every application webhook checks it.
const reloadErrorInterval = 10 * time.Second

// File is a secrets file, re-read when it changes, as exporter-toolkit
// re-reads its web configuration: every use stats the file, and a new
// modification time, size or file (a rename or a Kubernetes secret's
// symlink swap) makes it read again. A file that became unreadable or
// invalid keeps the last good secrets in force, and says so in the log
// and in liveswitch_exporter_application_secrets_last_reload_successful,
// so that a half-written file never locks every application out.
type File struct {
	path   string
	logger *slog.Logger
	errLog *ratelog.Limiter

	mu      sync.Mutex
	stat    os.FileInfo // of the content last read, good or bad
	secrets Secrets     // the last good content
	reload  prometheus.Gauge
}

// Open reads the secrets file; an unreadable or invalid one refuses the
// start. logger gets one line per reload, never a secret.
func Open(path string, logger *slog.Logger) (*File, error) {
	f := &File{path: path, logger: logger, errLog: ratelog.New(reloadErrorInterval, nil),
		reload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveswitch_exporter_application_secrets_last_reload_successful",
			Help: "1 when the last read of --webhook.application-secrets-file succeeded; 0 while a broken file is ignored and the last good secrets stay in force.",
		})}
	st, err := os.Stat(path)
	if err == nil {
		err = f.read(st)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Collector exports whether the last reload succeeded.
func (f *File) Collector() prometheus.Collector { return f.reload }

// Len is the number of applications the secrets in force are for.
func (f *File) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.secrets)
}

// Secrets returns the secrets in force, re-reading the file first if it
// changed. The map must not be modified.
func (f *File) Secrets() Secrets {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	switch {
	case err != nil:
		f.stat = nil // whatever comes back is read again
		f.failed(err)
	case !sameFile(st, f.stat):
		if err := f.read(st); err != nil {
			f.failed(err)
		}
	}
	return f.secrets
}

// read parses the file whose stat is st; it notes st even when the file is
// bad, so that a bad file is read once, not at every request.
func (f *File) read(st os.FileInfo) error {
	f.stat = st
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("reading the application secrets file: %w", err)
	}
	secrets, err := Parse(raw)
	if err != nil {
		return fmt.Errorf("application secrets file %s: %w", f.path, err)
	}
	if f.secrets != nil {
		f.logger.Info("Application secrets file reloaded", "path", f.path, "applications", len(secrets))
	}
	f.secrets = secrets
	f.reload.Set(1)
	return nil
}

func (f *File) failed(err error) {
	f.reload.Set(0)
	f.errLog.Log(f.logger, slog.LevelError, "The application secrets file cannot be used; the last good secrets stay in force",
		"err", err, "applications", len(f.secrets))
}

// sameFile reports whether b is a itself, unchanged.
func sameFile(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
