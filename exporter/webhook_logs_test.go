package exporter

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage/embedded"
)

// lateIngester hands a body to the real writer only once its client went
// away: what a slow commit looks like to a client that gave up.
type lateIngester struct{ w *writer.Writer }

func (l lateIngester) Ingest(ctx context.Context, body []byte) (fleet.Result, error) {
	<-ctx.Done()
	return l.w.Ingest(context.WithoutCancel(ctx), body)
}

// TestAbortedRequestLoggedAsWhatHappened: a client that gives up while its
// events are being applied is told nothing, but the log says they were
// applied, not that nothing was.
func TestAbortedRequestLoggedAsWhatHappened(t *testing.T) {
	logs := &testenv.LogBuffer{}
	srv := newTestServerWith(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.Ingester = lateIngester{c.Ingester.(*writer.Writer)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+WebhookPath,
		strings.NewReader(serverEvent(t0, "mediaserver.registered", `{"id":"m"}`)))
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered although its client gave up")
	}
	testenv.WaitFor(t, 10*time.Second, "the log line", func() bool {
		return strings.Contains(logs.String(), "went away before the answer; its events were taken")
	})
	if !strings.Contains(logs.String(), `outcomes="applied=1"`) || strings.Contains(logs.String(), "nothing applied") {
		t.Fatalf("log:\n%s", logs.String())
	}
	if m, _, ok := srv.fleet.Server(fleet.Key{Origin: "mediaserver", ID: "m"}); !ok || m.State != fleet.StateRegistered {
		t.Fatal("the event was not applied")
	}
}

// TestFailingStoreAnswersWithoutLogFlood: every webhook a failing store
// refuses gets a 503 whose body says what to do and names no path, and the
// handler itself logs none of them above debug (the writer logs the
// store's failure once per interval).
func TestFailingStoreAnswersWithoutLogFlood(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	srv := newTestServerFull(t, store, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	store.Close()
	for i := range 50 {
		code, body := srv.do(t, http.MethodPost, WebhookPath, serverEvent(t0+int64(i), "mediaserver.started", `{"id":"m"}`))
		if code != http.StatusServiceUnavailable || strings.Contains(body, dir) || !strings.Contains(body, "retry later") {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the handler logged failed requests:\n%s", logs.String())
	}
}
