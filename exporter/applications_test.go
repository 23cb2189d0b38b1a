package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// appServer is the exporter's HTTP surface, on a loopback listener, with
// application webhooks counted by tracker.
type appServer struct {
	*testServer
	tracker *applications.Tracker
}

// newAppServer serves application webhooks, signed with secrets when it is
// not empty (applicationId: secret lines of YAML).
func newAppServer(t *testing.T, secrets string, mutate func(*Config)) *appServer {
	t.Helper()
	return newAppServerOf(t, applications.Options{}, secrets, mutate)
}

// newAppServerOf is newAppServer with a tracker of opts (bounds added).
func newAppServerOf(t *testing.T, opts applications.Options, secrets string, mutate func(*Config)) *appServer {
	t.Helper()
	opts.Decode, opts.MaxApplications, opts.MaxPending = event.DefaultDecodeOptions, 10, 100
	tracker := applications.New(opts)
	var file *appsig.File
	if secrets != "" {
		path := filepath.Join(t.TempDir(), "secrets.yml")
		if err := os.WriteFile(path, []byte(secrets), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if file, err = appsig.Open(path, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	srv := newTestServerWith(t, func(c *Config) {
		c.Applications, c.ApplicationSecrets = tracker, file
		c.Registry.MustRegister(tracker)
		if mutate != nil {
			mutate(c)
		}
	})
	return &appServer{testServer: srv, tracker: tracker}
}

// counted is everything the exporter counted of application events: their
// series and their outcomes.
func (s *appServer) counted(t *testing.T) string {
	t.Helper()
	_, metrics := s.do(t, "GET", "/metrics", "")
	var lines []string
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "liveswitch_application_") || strings.HasPrefix(line, "liveswitch_exporter_application_entries") ||
			strings.HasPrefix(line, "liveswitch_exporter_application_events_") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n") + fmt.Sprintf("\noutcomes %v", s.tracker.Outcomes().Stats().Outcomes)
}

func appBody(ms int64, apps ...string) string {
	var events []string
	for i, app := range apps {
		events = append(events,
			fmt.Sprintf(`{"timestamp":%d,"origin":"connection","type":"connection.initializing","connection":{"applicationId":%q,"id":"c-%d","type":"sfu"}}`, ms, app, i),
			fmt.Sprintf(`{"timestamp":%d,"origin":"connection","type":"connection.connected","connection":{"applicationId":%q,"id":"c-%d","type":"sfu"}}`, ms+1500, app, i))
	}
	return "[" + strings.Join(events, ",") + "]"
}

// TestApplicationSignatures posts application webhooks signed by Debian's
// openssl (not by the code under test) to a real listener: only the valid
// one is counted; every other is answered 401 with its reason, counted as
// a refusal, and changes nothing.
func TestApplicationSignatures(t *testing.T) {
	srv := newAppServer(t, "app-a: secret-of-a\napp-b: secret-of-b\n", nil)
	now := time.Now().UnixMilli()
	body := appBody(now, "app-a")
	altered := strings.Replace(body, `"c-0"`, `"c-1"`, 1)
	if len(altered) != len(body) || altered == body {
		t.Fatal("the altered body must differ by exactly one byte")
	}
	sign := func(b, secret string) string { return testenv.OpenSSLSignature(t, []byte(b), secret) }
	for _, tc := range []struct {
		name, body, signature string
		code                  int
		reply, reason         string
	}{
		{"valid", body, sign(body, "secret-of-a"), http.StatusNoContent, "", ""},
		{"wrong secret", body, sign(body, "secret-of-b"), http.StatusUnauthorized, "does not match the body", "mismatch"},
		{"body altered by one byte", altered, sign(body, "secret-of-a"), http.StatusUnauthorized, "does not match the body", "mismatch"},
		{"missing header", body, "", http.StatusUnauthorized, "missing X-ApplicationSignature header", "missing"},
		{"base64 of another body", body, sign(appBody(now+1, "app-a"), "secret-of-a"), http.StatusUnauthorized, "does not match the body", "mismatch"},
		{"not base64", body, "not base64!", http.StatusUnauthorized, "is not base64", "malformed"},
		{"mixed applications", appBody(now, "app-a", "app-b"), sign(appBody(now, "app-a", "app-b"), "secret-of-a"),
			http.StatusUnauthorized, "the events name 2 applications", "several_applications"},
		{"unknown application", appBody(now, "app-c"), sign(appBody(now, "app-c"), "secret-of-c"),
			http.StatusUnauthorized, `no secret is configured for application "app-c"`, "unknown_application"},
		{"an event naming no application", `{"timestamp":` + fmt.Sprint(now) + `,"type":"client.left"}`,
			sign(`{"timestamp":`+fmt.Sprint(now)+`,"type":"client.left"}`, "secret-of-a"), http.StatusUnauthorized, "names no application", "no_application"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.counted(t)
			refusals := srv.refusals(t, tc.reason)
			header := http.Header{}
			if tc.signature != "" {
				header.Set(appsig.Header, tc.signature)
			}
			code, reply := srv.doWith(t, "POST", WebhookPath, tc.body, header)
			if code != tc.code || !strings.Contains(reply, tc.reply) || strings.Count(strings.TrimSpace(reply), "\n") > 0 {
				t.Fatalf("got %d %q, want %d with one line containing %q", code, reply, tc.code, tc.reply)
			}
			if strings.Contains(reply, "secret-of") {
				t.Fatalf("the answer quotes a secret: %q", reply)
			}
			after := srv.counted(t)
			if tc.code == http.StatusNoContent {
				if !strings.Contains(after, `liveswitch_application_connection_setup_seconds_count{application_id="app-a"} 1`) {
					t.Fatalf("the valid webhook was not counted:\n%s", after)
				}
				return
			}
			if after != before {
				t.Fatalf("a refused webhook changed the counts:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if got := srv.refusals(t, tc.reason); got != refusals+1 {
				t.Fatalf("refusals{reason=%q} went from %d to %d", tc.reason, refusals, got)
			}
		})
	}
}

// refusals reads liveswitch_exporter_application_signature_refusals_total
// of reason from /metrics.
func (s *appServer) refusals(t *testing.T, reason string) int {
	t.Helper()
	_, metrics := s.do(t, "GET", "/metrics", "")
	var n int
	prefix := `liveswitch_exporter_application_signature_refusals_total{reason="` + reason + `"} `
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			fmt.Sscan(v, &n)
		}
	}
	return n
}

// TestApplicationWebhooksBesideTheFleet: with secrets set, server
// webhooks need no signature; a body mixing both kinds is refused whole;
// the token, when set, is required of application webhooks too.
func TestApplicationWebhooksBesideTheFleet(t *testing.T) {
	srv := newAppServer(t, "app-a: secret-of-a\n", func(c *Config) { c.Guard.Token = "tok" })
	now := time.Now().UnixMilli()
	server := serverEvent(now, "mediaserver.started", `{"id":"m1","region":"eu","deploymentId":"d"}`)
	app := appBody(now, "app-a")
	mixed := "[" + server + "," + strings.TrimPrefix(app, "[")
	signed := func(b string) http.Header {
		return http.Header{appsig.Header: {testenv.OpenSSLSignature(t, []byte(b), "secret-of-a")}, "Authorization": {"Bearer tok"}}
	}
	for _, tc := range []struct {
		name, body string
		header     http.Header
		code       int
		reply      string
	}{
		{"a server webhook", server, http.Header{"Authorization": {"Bearer tok"}}, http.StatusNoContent, ""},
		{"a signed application webhook without the token", app, http.Header{appsig.Header: signed(app)[appsig.Header]}, http.StatusUnauthorized, "token"},
		{"a body mixing server and application events", mixed, signed(mixed), http.StatusBadRequest, "mixes server events and application events"},
		{"a signed application webhook with the token", app, signed(app), http.StatusNoContent, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, reply := srv.doWith(t, "POST", WebhookPath, tc.body, tc.header); code != tc.code || !strings.Contains(reply, tc.reply) {
				t.Fatalf("got %d %q, want %d containing %q", code, reply, tc.code, tc.reply)
			}
		})
	}
	if n := srv.fleet.Len(); n != 1 {
		t.Fatalf("%d servers, want the one of the server webhook", n)
	}
	if out := srv.tracker.Outcomes().Stats().Outcomes; out[fleet.OutcomeApplied] != 0 || out[fleet.OutcomeInvalid] != 3 {
		t.Fatalf("application outcomes %v: want the 3 events of the mixed body invalid and nothing else (taken events count in their own family)", out)
	}
	_, metrics := srv.do(t, "GET", "/metrics", "")
	if n := sumSeries(metrics, "liveswitch_application_events_total"); n != 2 {
		t.Fatalf("%v application events counted, want the 2 of the signed webhook", n)
	}
}

// TestApplicationWebhooksUnverified: without secrets, application webhooks
// are counted with or without a signature, and answered like server ones.
func TestApplicationWebhooksUnverified(t *testing.T) {
	srv := newAppServer(t, "", nil)
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		name, body string
		code       int
		reply      string
	}{
		{"counted", appBody(now, "app-a", "app-b"), http.StatusNoContent, ""},
		{"an undocumented kind", `{"timestamp":` + fmt.Sprint(now) + `,"type":"connection.exploded","connection":{"applicationId":"app-a"}}`, http.StatusAccepted, "ignored=1"},
		{"malformed", `{"timestamp":` + fmt.Sprint(now) + `,"type":"client.left","client":{"applicationId":7}}`, http.StatusBadRequest, `"applicationId" has the wrong type`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, reply := srv.do(t, "POST", WebhookPath, tc.body); code != tc.code || !strings.Contains(reply, tc.reply) {
				t.Fatalf("got %d %q, want %d containing %q", code, reply, tc.code, tc.reply)
			}
		})
	}
	if counted := srv.counted(t); !strings.Contains(counted, `liveswitch_application_events_total{application_id="app-b",event="connection.connected"} 1`) {
		t.Fatalf("not counted:\n%s", counted)
	}
}

// sumSeries adds up the samples of family in an exposition.
func sumSeries(exposition, family string) float64 {
	var sum float64
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, family+"{"); ok {
			fields := strings.Fields(rest)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			sum += v
		}
	}
	return sum
}

// TestApplicationRetriesAndReplaysCountOnce: the same signed body sent
// again (LiveSwitch's retry, or a replay of a captured body) is answered
// 202 duplicate=1 and counts nothing more; a signed body stamped in 2008 is
// answered 202 with its reason and counts nothing. Before, the same
// connection.failed sent three times counted three.
func TestApplicationRetriesAndReplaysCountOnce(t *testing.T) {
	srv := newAppServer(t, "app-a: secret-of-a\n", nil)
	signed := func(b string) http.Header {
		return http.Header{appsig.Header: {testenv.OpenSSLSignature(t, []byte(b), "secret-of-a")}}
	}
	failedAt := func(ms int64) string {
		return fmt.Sprintf(`{"timestamp":%d,"type":"connection.failed","connection":{"applicationId":"app-a","id":"c-1","type":"sfu","error":"ICE failed"}}`, ms)
	}
	body := failedAt(time.Now().UnixMilli())
	old := failedAt(time.Date(2008, 10, 20, 12, 0, 0, 0, time.UTC).UnixMilli())
	for i, tc := range []struct {
		body  string
		code  int
		reply string
	}{
		{body, http.StatusNoContent, ""},
		{body, http.StatusAccepted, "duplicate=1\n"},
		{body, http.StatusAccepted, "duplicate=1\n"},
		{old, http.StatusAccepted, "refused=1; 1 older than --application.max-event-age (1h0m0s)\n"},
	} {
		if code, reply := srv.doWith(t, "POST", WebhookPath, tc.body, signed(tc.body)); code != tc.code || reply != tc.reply {
			t.Fatalf("post %d: %d %q, want %d %q", i, code, reply, tc.code, tc.reply)
		}
	}
	counted := srv.counted(t)
	for _, want := range []string{
		`liveswitch_application_events_total{application_id="app-a",event="connection.failed"} 1`,
		`liveswitch_application_connection_failures_by_cause_total{application_id="app-a",cause="ice"} 1`,
		`liveswitch_exporter_application_events_refused_total{reason="too_old"} 1`,
	} {
		if !strings.Contains(counted, want+"\n") {
			t.Errorf("no %s in\n%s", want, counted)
		}
	}
	if got := srv.tracker.Outcomes().Stats().Outcomes; got[fleet.OutcomeDuplicate] != 2 || got[fleet.OutcomeRefused] != 1 {
		t.Errorf("outcomes %v: want 2 duplicates and 1 refused", got)
	}
}

// downState is a shared state that does not answer.
type downState struct{ callstate.State }

func (downState) Apply(context.Context, []callstate.Fact, time.Time, []callstate.Effect) (callstate.Drops, error) {
	return callstate.Drops{}, errors.New("dial tcp 10.0.0.7:6379: connection refused")
}

// TestApplicationStateDownIs503: when the shared application state does
// not answer, the webhook is answered 503 with Retry-After, without the
// store's address, and nothing is counted: LiveSwitch's retry counts once.
func TestApplicationStateDownIs503(t *testing.T) {
	srv := newAppServerOf(t, applications.Options{State: downState{callstate.NewMemory(callstate.Limits{})}}, "", nil)
	body := appBody(time.Now().UnixMilli(), "app-a")
	resp, err := http.Post(srv.URL+WebhookPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(reply), "shared application state did not answer") || strings.Contains(string(reply), "10.0.0.7") {
		t.Fatalf("%d %q (Retry-After %q)", resp.StatusCode, reply, resp.Header.Get("Retry-After"))
	}
	if counted := srv.counted(t); strings.Contains(counted, `application_id="app-a",event="connection.connected"} 1`) {
		t.Fatalf("counted although the state failed:\n%s", counted)
	}
}
