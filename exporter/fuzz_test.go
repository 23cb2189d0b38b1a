package exporter

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

// FuzzWebhook drives the whole webhook handler, request to fleet: no panic,
// every answer 2xx or 4xx, a rejected request leaves the fleet as it was, and
// /metrics stays a valid exposition.
func FuzzWebhook(f *testing.F) {
	now := time.Now().UnixMilli()
	for _, s := range []string{
		serverEvent(now, "mediaserver.started", `{"id":"m1","region":"eu","deploymentId":"d","coreCount":8}`),
		serverEvent(now+1, "mediaserver.registered", `{"id":"m1","region":"eu"}`),
		"[" + serverEvent(now+2, "gateway.started", `{"id":"g"}`) + "," + serverEvent(now+3, "gateway.stats", `{"id":"g"}`) + "]",
		serverEvent(now, "newcomponent.started", `{"id":"n","version":2}`),
		`{"timestamp":1,"type":"client.joined"}`, `{`, `[]`,
		`[{"timestamp":` + strconv.FormatInt(now, 10) + `,"origin":"client","type":"channel.client.joined","client":{"applicationId":"a"}}]`,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(serverEvent(now, "gateway.stopped", `{"id":"g"}`)), "gzip")

	servers := fleet.New()
	w := writer.New(servers, nil, writer.Options{
		Decode: event.DefaultDecodeOptions, Limits: fleet.Limits{MaxServers: 50},
	})
	f.Cleanup(w.Close)
	apps := applications.New(applications.Options{Decode: event.DefaultDecodeOptions, MaxApplications: 20, MaxPending: 100})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector.NewCollector(servers).CountAlso(apps.Outcomes()), apps)
	ready := &atomic.Bool{}
	ready.Store(true)
	h, err := NewHandlers(Config{TelemetryPath: "/metrics", Ingester: w, Forgetter: w, Fleet: servers, Ready: ready.Load,
		MaxBodyBytes: 64 << 10, MaxInFlight: 4, Registry: reg, Logger: slog.New(slog.DiscardHandler), Applications: apps})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		before := servers.Snapshot().Servers
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Encoding", encoding)
		rec := httptest.NewRecorder()
		h.Main.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500 || rec.Code < 200:
			t.Fatalf("status %d for %q", rec.Code, body)
		case rec.Code >= 400:
			if after := servers.Snapshot().Servers; !reflect.DeepEqual(after, before) {
				t.Fatalf("rejected (%d) but the fleet changed", rec.Code)
			}
			if reason := rec.Body.String(); strings.Count(reason, "\n") != 1 {
				t.Fatalf("reason %q is not one line", reason)
			}
		}
		checkExposition(t, h.Main)
	})
}

// checkExposition scrapes handler and parses the text format strictly.
func checkExposition(t *testing.T, handler http.Handler) {
	t.Helper()
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	text := rec.Body.String()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics is not a valid exposition: %v", err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !utf8.ValidString(l.GetValue()) || strings.ContainsAny(l.GetValue(), "\n\r\x00") {
					t.Fatalf("label %s=%q", l.GetName(), l.GetValue())
				}
			}
		}
	}
	if !strings.Contains(text, "liveswitch_exporter_events_total") {
		t.Fatalf("/metrics lacks the exporter's counters:\n%s", text)
	}
}
