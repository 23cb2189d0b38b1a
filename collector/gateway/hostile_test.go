package gateway

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// answerOn serves body with status on the path ending in suffix, and the
// fixtures elsewhere.
func answerOn(suffix string, status int, contentType, body string) func(*fixtureAPI) http.HandlerFunc {
	return func(api *fixtureAPI) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, suffix) {
				(&fixtureAPI{pascal: api.pascal, key: api.key}).ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
}

func servers(body string) func(*fixtureAPI) http.HandlerFunc {
	return answerOn("/v1/mediaservers", http.StatusOK, "application/json", body)
}

func application(body string) func(*fixtureAPI) http.HandlerFunc {
	return answerOn("/applications/app-meetings", http.StatusOK, "application/json", body)
}

// TestHostileAnswers: every answer that cannot be read as a whole fails the
// poll (a bad item of an answer is skipped: see TestBadItemsAreSkipped). The fleet and
// the API's series keep the last good observation, liveswitch_api_up turns
// 0, one log line gives the reason, and no line holds the key.
func TestHostileAnswers(t *testing.T) {
	const good = `{"id":"ms-1","usedCapacity":0.5}`
	for _, tc := range []struct {
		name   string
		answer func(*fixtureAPI) http.HandlerFunc
		reason string
	}{
		{"401 problem", answerOn("/v1/mediaservers", 401, "application/problem+json",
			`{"type":"about:blank","title":"Invalid API key","status":401}`), `HTTP 401: the API key was refused (check --liveswitch.api-key-file) (problem: "Invalid API key")`},
		{"403 problem", answerOn("/v1/mediaservers", 403, "application/problem+json", `{"title":"Forbidden","status":403}`), "HTTP 403"},
		{"500 HTML page", answerOn("/v1/mediaservers", 500, "text/html", "<html><body>Internal error</body></html>"), "HTTP 500"},
		{"200 HTML page", servers("<!DOCTYPE html><html><title>Login</title></html>"), "not JSON but markup"},
		{"plain text", servers("Service Unavailable"), "not a JSON array"},
		{"empty body", servers(""), "the answer is empty"},
		{"truncated JSON", servers(`[{"id":"ms-1","usedCapacity":0.`), "not valid JSON"},
		{"object, not array", servers(`{"value":[` + good + `]}`), "not a JSON array"},
		{"null", servers(`null`), "not a JSON array"},
		{"trailing garbage", servers(`[` + good + `] x`), "not valid JSON"},
		{"body over 16 MiB", servers("[" + strings.Repeat(" ", 16<<20) + "]"), "larger than 16 MiB"},
		{"timeout", func(*fixtureAPI) http.HandlerFunc {
			return func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
		}, "no complete answer within 3s"},
		{"connection cut mid-body", func(*fixtureAPI) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				conn, buf, _ := w.(http.Hijacker).Hijack()
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{\"id\":")
				_ = buf.Flush()
				_ = conn.Close()
			}
		}, "no answer: unexpected EOF"},
		{"applications not an array", answerOn("/v1.0/applications", 200, "application/json", `{"ids":["a"]}`), "not a JSON array"},
		{"application snapshot 500", answerOn("/applications/app-meetings", 500, "application/problem+json", `{"title":"Oops"}`), `application: HTTP 500 (problem: "Oops")`},
		{"application snapshot HTML", application("<html>busy</html>"), "application: the answer is not JSON but markup"},
		{"application snapshot not an object", application(`["app-meetings"]`), "application: the answer is not a JSON object"},
		{"application snapshot truncated", application(`{"id":"app-meetings","channelCount":`), "application: the answer is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.Timeout = 3 * time.Second })
			r.tick()
			before, snapBefore := fleetSeries(r.exposition(t)), r.fleet.Snapshot()
			if !strings.Contains(r.exposition(t), "liveswitch_api_up 1\n") {
				t.Fatalf("the good poll failed:\n%s", r.logs.String())
			}
			r.api.answer(tc.answer(r.api))
			r.tick()
			after, snapAfter := r.exposition(t), r.fleet.Snapshot()
			if fleetSeries(after) != before || !reflect.DeepEqual(snapAfter.Servers, snapBefore.Servers) || snapAfter.Gateway != snapBefore.Gateway {
				t.Errorf("the fleet changed:\n%s\nwas:\n%s", fleetSeries(after), before)
			}
			if !strings.Contains(after, "liveswitch_api_up 0\n") {
				t.Error("liveswitch_api_up is not 0")
			}
			logs := r.logs.String()
			quoted := strings.ReplaceAll(tc.reason, `"`, `\"`) // as slog quotes it
			if n := strings.Count(logs, "Polling the Gateway's REST API failed"); n != 1 || !strings.Contains(logs, quoted) {
				t.Errorf("%d failure lines, want one with %q:\n%s", n, tc.reason, logs)
			}
			if strings.Contains(logs, testKey) || strings.Contains(logs, r.srv.URL) {
				t.Errorf("the log holds the key or the URL:\n%s", logs)
			}
		})
	}
}

// TestRepeatedFailuresLogOnce: a failure that goes on is reported once,
// then once a minute with the count, and its end once.
func TestRepeatedFailuresLogOnce(t *testing.T) {
	r := newRig(t, nil)
	r.clock.stopped.Store(true)
	r.api.answer(answerOn("/v1/mediaservers", 503, "text/plain", "busy")(r.api))
	for range 10 {
		r.tick()
		r.clock.Advance(time.Second)
	}
	if n := strings.Count(r.logs.String(), "Polling the Gateway's REST API failed"); n != 1 {
		t.Fatalf("%d lines for 10 failures within a minute:\n%s", n, r.logs.String())
	}
	for range 60 {
		r.tick()
		r.clock.Advance(time.Second)
	}
	logs := r.logs.String()
	if n := strings.Count(logs, "Polling the Gateway's REST API failed"); n != 2 || !strings.Contains(logs, "repeated=") {
		t.Fatalf("%d lines after a minute of failures:\n%s", n, logs)
	}
	r.api.hostile.Store(nil)
	r.tick()
	if !strings.Contains(r.logs.String(), fmt.Sprintf("The Gateway's REST API answers again\" failures=%d", 70)) {
		t.Fatalf("no line for the end of the failure:\n%s", r.logs.String())
	}
}
