package exporter

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkWebhook measures the webhook handler end to end in-process
// (decode, apply, publish, answer) with the fleet in memory, against the
// bound of a bare handler that only drains the body and answers 204.
func BenchmarkWebhook(b *testing.B) {
	now := time.Now().UnixMilli()
	bodies := make([][]byte, 10000)
	for i := range bodies {
		bodies[i] = []byte(event(now+int64(i), "mediaserver.registered", fmt.Sprintf(
			`{"id":"ms-%05d","version":"1.24.2.0","machineName":"ms-%05d","coreCount":16,"region":"us-east","deploymentId":"prod",`+
				`"operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64"}`, i, i)))
	}
	srv := newBenchHandler(b)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"exporter", srv}, {"bound=bare-handler", bare}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(bodies[i%len(bodies)]))
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, req)
				if rec.Code >= 300 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
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
