package exporter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// getJSON fetches path and decodes the answer into v.
func (s *testServer) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	code, body := s.do(t, http.MethodGet, path, "")
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, body)
	}
	return code
}

func feedAPIFleet(t *testing.T, srv *testServer) {
	t.Helper()
	for _, body := range []string{
		serverEvent(t0, "mediaserver.registered", `{"id":"ms-1","region":"eu","deploymentId":"prod","coreCount":8,"machineName":"m1","version":"1.2"}`),
		serverEvent(t0, "mediaserver.started", `{"id":"ms-2","region":"us","deploymentId":"prod"}`),
		serverEvent(t0, "mediaserver.unregistered", `{"id":"ms-3","region":"eu","deploymentId":"staging"}`),
		serverEvent(t0, "gateway.started", `{"id":"gw-1","deploymentId":"prod"}`),
		serverEvent(t0, "sipconnector.stopped", `{"id":"sip-1","region":"eu","deploymentId":"prod"}`),
	} {
		if code, answer := srv.do(t, http.MethodPost, WebhookPath, body); code != http.StatusNoContent {
			t.Fatalf("feeding %s: %d %s", body, code, answer)
		}
	}
}

func TestServersAPI(t *testing.T) {
	srv := newTestServer(t, DefaultMaxBodyBytes)
	feedAPIFleet(t, srv)
	for _, tc := range []struct {
		query string
		ids   string
	}{
		{"", "gw-1 ms-1 ms-2 ms-3 sip-1"},
		{"?origin=mediaserver", "ms-1 ms-2 ms-3"},
		{"?state=running", "gw-1 ms-2"},
		{"?region=eu", "ms-1 ms-3 sip-1"},
		{"?deployment_id=prod&origin=mediaserver", "ms-1 ms-2"},
		{"?region=eu&state=unregistered", "ms-3"},
		{"?origin=nothing", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var out struct {
				Count   int          `json:"count"`
				Servers []ServerJSON `json:"servers"`
			}
			if code := srv.getJSON(t, "/api/v1/servers"+tc.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var ids []string
			for _, s := range out.Servers {
				ids = append(ids, s.ID)
			}
			if got := strings.Join(ids, " "); got != tc.ids || out.Count != len(ids) {
				t.Fatalf("got %q (count %d), want %q", got, out.Count, tc.ids)
			}
		})
	}
	var errOut struct{ Error string }
	if code := srv.getJSON(t, "/api/v1/servers?state=up", &errOut); code != http.StatusBadRequest || !strings.Contains(errOut.Error, "state must be") {
		t.Fatalf("unknown state: %d %q", code, errOut.Error)
	}
	code, body := srv.do(t, http.MethodGet, "/api/v1/servers?origin=mediaserver&state=registered", "")
	for _, want := range []string{`"machine_name": "m1"`, `"cores": 8`, `"since": "2026-01-01T00:00:00Z"`, `"version": "1.2"`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("ms-1 lacks %s:\n%s", want, body)
		}
	}
	if code, _ := srv.do(t, http.MethodPost, "/api/v1/servers", "{}"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the read API: %d", code)
	}
}

func TestServerAPIShowsItsLastEvents(t *testing.T) {
	srv := newTestServer(t, DefaultMaxBodyBytes)
	actions := []string{"started", "registered", "unregistered", "registered"}
	const n = 24
	for i := range n {
		srv.do(t, http.MethodPost, WebhookPath, serverEvent(t0+int64(i), "mediaserver."+actions[i%4], `{"id":"ms-1"}`))
	}
	var one ServerJSON
	if code := srv.getJSON(t, "/api/v1/servers/mediaserver/ms-1", &one); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(one.Events) != 20 || one.State != "registered" || one.Flaps == 0 {
		t.Fatalf("server %+v: want registered, flapping, 20 events", one)
	}
	for i, e := range one.Events {
		k := n - 1 - i
		if e.Kind != actions[k%4] || e.Type != "mediaserver."+actions[k%4] || e.EventTime != Time(t0+int64(k)) || e.ReceivedTime == 0 {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	var errOut struct{ Error string }
	for _, path := range []string{"/api/v1/servers/mediaserver/nope", "/api/v1/servers/gateway/ms-1"} {
		if code := srv.getJSON(t, path, &errOut); code != http.StatusNotFound || errOut.Error != "no such server" {
			t.Fatalf("%s: %d %q", path, code, errOut.Error)
		}
	}
}

type deliveriesJSON struct {
	Deliveries []Delivery `json:"deliveries"`
}

func TestEventsAPIKeepsTheLastDeliveries(t *testing.T) {
	srv := newTestServerWith(t, func(c *Config) { c.Guard.Token = "s3cret-token"; c.MaxBodyBytes = 4096 })
	post := func(path, auth, body string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := range AppliedKept + 40 {
		post(WebhookPath+"?token=s3cret-token", "", serverEvent(t0+int64(i), "mediaserver.registered", fmt.Sprintf(`{"id":"ms-%d"}`, i%3)))
	}
	big := `{"timestamp":"soon","type":"mediaserver.registered","pad":"` + strings.Repeat("é", 1500) + `"}`
	post(WebhookPath, "Bearer s3cret-token", big)
	post(WebhookPath+"?token=wrong-guess", "", "{}")

	var out deliveriesJSON
	if code := srv.getJSON(t, "/api/v1/events", &out); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	d := out.Deliveries
	if len(d) != AppliedKept+2 { // the applied ones, and the rejected ones apart
		t.Fatalf("%d deliveries kept, want %d", len(d), AppliedKept+2)
	}
	if d[0].Status != http.StatusUnauthorized || d[0].Outcome != "rejected" || d[0].Accepted || d[0].Reason == "" {
		t.Fatalf("newest (wrong token): %+v", d[0])
	}
	if d[1].Status != http.StatusBadRequest || !strings.Contains(d[1].Reason, "timestamp") ||
		len(d[1].Body) > 1024 || !d[1].BodyTruncated || !strings.HasPrefix(d[1].Body, `{"timestamp":"soon"`) {
		t.Fatalf("rejected body: %+v (body %d bytes)", d[1], len(d[1].Body))
	}
	if d[2].Status != http.StatusNoContent || d[2].Outcome != "applied" || !d[2].Accepted || d[2].Body != "" {
		t.Fatalf("accepted: %+v", d[2])
	}
	_, raw := srv.do(t, http.MethodGet, "/api/v1/events", "")
	if strings.Contains(raw, "s3cret") || strings.Contains(raw, "wrong-guess") {
		t.Fatal("a token shows in /api/v1/events")
	}
	for i := 1; i < len(d); i++ {
		if d[i].Time.After(d[i-1].Time) {
			t.Fatalf("deliveries %d and %d are not newest first", i-1, i)
		}
	}
}

// t0 is a realistic event time (2026-01-01, in milliseconds) for fixtures.
const t0 int64 = 1_767_225_600_000
