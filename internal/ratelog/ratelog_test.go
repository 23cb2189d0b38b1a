package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10*time.Second, func() time.Time { return now })
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	for _, step := range []struct {
		advance time.Duration
		msg     string
	}{
		{0, "store failed"}, {time.Second, "store failed"}, {time.Second, "store failed"},
		{0, "other"}, {9 * time.Second, "store failed"}, {time.Second, "store failed"},
	} {
		now = now.Add(step.advance)
		l.Log(logger, slog.LevelError, step.msg, "err", "disk")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{`msg="store failed" err=disk`, `msg=other err=disk`, `msg="store failed" err=disk repeated=2 over=10s`}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d: %q does not end with %q", i, lines[i], w)
		}
	}
}

func TestLimiterSkipsDisabledLevels(t *testing.T) {
	l := New(time.Second, nil)
	var buf bytes.Buffer
	l.Log(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), slog.LevelDebug, "quiet")
	if buf.Len() != 0 || len(l.seen) != 0 {
		t.Fatalf("a disabled level was logged or counted: %q", buf.String())
	}
}
