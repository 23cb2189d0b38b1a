package exporter

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// BenchmarkWebhook measures the webhook handler end to end in-process
// (decode, apply, publish, answer) with the fleet in memory, against the
// bound of a bare handler that only drains the body and answers 204.
func BenchmarkWebhook(b *testing.B) {
	events := newBenchEvents(10000)
	srv := newBenchHandler(b)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"exporter", srv}, {"bound=bare-handler", bare}} {
		i := 0 // across every run of the sub-benchmark: the fleet keeps its state
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			// One request and one response writer serve every iteration, so
			// that the allocations counted are the handler's own.
			body := &bytes.Reader{}
			req := httptest.NewRequest(http.MethodPost, WebhookPath, nil)
			req.RemoteAddr = "192.0.2.1:1234"
			w := &benchWriter{header: http.Header{}}
			req.Body = io.NopCloser(body)
			for b.Loop() {
				body.Reset(events.next(i))
				req.ContentLength = int64(body.Len())
				w.reset()
				tc.h.ServeHTTP(w, req)
				if w.code != http.StatusNoContent {
					b.Fatalf("%d %s", w.code, w.body)
				}
				i++
			}
		})
	}
}

func newBenchHandler(b *testing.B) http.Handler {
	b.Helper()
	return newTestServerWith(b, func(*Config) {}).handler
}

// benchWriter is a reusable http.ResponseWriter for benchmarks.
type benchWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.code, w.body = 0, w.body[:0]
}

// benchEvents makes the body of the next event of a fleet of media
// servers, each registering and unregistering in turn with a rising
// timestamp, so that every event is applied; bodies are written into one
// buffer, allocating nothing per request.
type benchEvents struct {
	templates [][]byte // per server, the timestamp left as zeros at offset 13
	buf       []byte
	base      int64
}

func newBenchEvents(servers int) *benchEvents {
	e := &benchEvents{base: time.Now().Add(-time.Hour).UnixMilli()}
	for i := range servers {
		for _, action := range []string{"registered", "unregistered"} {
			e.templates = append(e.templates, []byte(serverEvent(1000000000000, "mediaserver."+action, fmt.Sprintf(
				`{"id":"ms-%05d","version":"1.24.2.0","machineName":"ms-%05d","coreCount":16,"region":"us-east","deploymentId":"prod",`+
					`"operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64"}`, i, i))))
		}
	}
	return e
}

// next returns the body of event i: server i mod servers, its (i div
// servers)-th event.
func (e *benchEvents) next(i int) []byte {
	servers := len(e.templates) / 2
	round := i / servers
	t := e.templates[2*(i%servers)+round%2]
	e.buf = append(e.buf[:0], t...)
	ts := strconv.AppendInt(e.buf[len(e.buf):len(e.buf)], e.base+int64(round), 10)
	copy(e.buf[len(`{"timestamp":`):], ts)
	return e.buf
}
