package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// leakKey looks like a key the Console makes: no part of it is a word that
// the exporter's own texts could hold.
const leakKey = "Qx7vR2-mK9pL4-wZ3nT8-hB6yJ1"

// keyPart returns the first run of more than keyShownAtMost of key's
// characters that text holds, ignoring case, or "" if none. It is written
// apart from keyMask, so that the test does not trust what it tests.
func keyPart(text, key string) string {
	text, key = strings.ToLower(text), strings.ToLower(key)
	for n := keyShownAtMost + 1; n <= len(key); n++ {
		for i := 0; i+n <= len(key); i++ {
			if strings.Contains(text, key[i:i+n]) {
				return key[i : i+n]
			}
		}
		return "" // no run of n: none longer either
	}
	return ""
}

// echo is what a Gateway that repeats the key it was sent says: the key
// whole, cut as a text limit would cut it, a part from its middle, in
// upper case, and split by a line break.
func echo(key string) string {
	return "key " + key + " (cut: " + key[:9] + "…) middle " + key[4:15] + " upper " + strings.ToUpper(key) +
		" split " + key[:12] + "\n" + key[12:]
}

// echoing answers with status, the echo in headers, and body; on paths not
// ending in suffix (when given) it serves the fixtures.
func echoing(api *fixtureAPI, suffix string, status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if suffix != "" && !strings.HasSuffix(r.URL.Path, suffix) {
			(&fixtureAPI{key: api.key}).ServeHTTP(w, r)
			return
		}
		e := strings.ReplaceAll(echo(leakKey), "\n", " ")
		w.Header().Set("X-Echo", e)
		w.Header().Set("WWW-Authenticate", `ApiKey realm="`+e+`"`)
		w.Header().Set("Retry-After", e)
		w.Header().Set("Location", "/elsewhere?key="+leakKey)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// raw writes text on the bare connection: answers net/http itself
// refuses, whose errors quote them.
func raw(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString(text)
		_ = buf.Flush()
		_ = conn.Close()
	}
}

// TestKeyNeverLeaks: a Gateway echoes the key, whole and in parts, in
// every place it can (problem titles and details, headers, bodies, status
// lines, ids) for every kind of answer. No run of more than keyShownAtMost
// of its characters reaches a log line (the rig logs debug lines too), a series of
// /metrics, or an error Poll returns.
func TestKeyNeverLeaks(t *testing.T) {
	e := echo(leakKey)
	quoted := strings.ReplaceAll(e, "\n", `\n`)
	problem := func(status int) string {
		return fmt.Sprintf(`{"type":"about:blank","title":%q,"status":%d,"detail":%q,"instance":"/%s"}`, e, status, e, leakKey)
	}
	cases := []struct {
		name, suffix string // suffix: the endpoint that misbehaves; empty: all
		status       int
		body         string
		handler      http.HandlerFunc // instead of status and body
	}{
		{name: "200 garbage", status: 200, body: "garbage " + e},
		{name: "200 problem instead of a list", suffix: "/v1/mediaservers", status: 200, body: problem(200)},
		{name: "200 truncated", suffix: "/v1/mediaservers", status: 200, body: `[{"id":"ms-1","region":"` + quoted},
		{name: "200 ids and labels echo the key", suffix: "/v1/mediaservers", status: 200, body: `[{"id":"ms-ok"},{"id":"` + leakKey + `"},` +
			`{"id":"ms-` + leakKey[3:11] + `"},{"id":"ms-r","region":"` + leakKey + `"},{"id":"ms-v","version":"v` + leakKey[2:9] + `"},` +
			`{"id":"ms-d","deploymentId":"` + strings.ToUpper(leakKey) + `"}]`},
		{name: "200 members of the wrong type", suffix: "/v1/mediaservers", status: 200,
			body: `[{"id":"ms-1","coreCount":"` + leakKey + `","draining":"` + leakKey + `","usedCapacity":"` + leakKey + `"}]`},
		{name: "200 application ids echo the key", suffix: "/v1.0/applications", status: 200,
			body: `["app-meetings","` + leakKey + `",{"id":"app-` + leakKey[5:14] + `"},{"id":7,"name":"` + leakKey + `"}]`},
		{name: "200 snapshot of another application", suffix: "/applications/app-meetings", status: 200,
			body: `{"id":"` + leakKey + `","channelCount":"` + leakKey + `"}`},
		{name: "200 HTML", status: 200, body: "<html><title>" + e + "</title></html>"},
		{name: "302", status: 302, body: problem(302)},
		{name: "401", status: 401, body: problem(401)},
		{name: "403", status: 403, body: problem(403)},
		{name: "404", status: 404, body: problem(404)},
		{name: "404 for an application", suffix: "/applications/app-meetings", status: 404, body: problem(404)},
		{name: "429", status: 429, body: problem(429)},
		{name: "500", status: 500, body: problem(500)},
		{name: "500 for an application", suffix: "/applications/app-webinars", status: 500, body: problem(500)},
		{name: "500 HTML", status: 500, body: "<html><h1>" + e + "</h1></html>"},
		{name: "problem title of 10 KiB", status: 503, body: `{"title":"` + strings.Repeat(leakKey[:7]+" ", 1500) + quoted + `"}`},
		{name: "oversized", status: 200, body: `[{"id":"` + leakKey + `"}` + strings.Repeat(" ", 16<<20) + "]"},
		{name: "slow", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Echo", leakKey)
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`[{"id":"` + leakKey + `",`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
		{name: "malformed status line", handler: raw("HTTP/1.1 2x0 " + leakKey + "\r\n\r\n")},
		{name: "not HTTP", handler: raw(leakKey + " " + leakKey + "\r\n\r\n")},
		{name: "malformed header line", handler: raw("HTTP/1.1 200 OK\r\n" + leakKey + "\r\nContent-Length: 2\r\n\r\n[]")},
		{name: "bad content length", handler: raw("HTTP/1.1 200 OK\r\nContent-Length: " + leakKey + "\r\n\r\n[]")},
		{name: "cut mid-body", handler: raw("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{\"id\":\"" + leakKey)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.Key, c.Timeout = leakKey, time.Second })
			r.api.key = leakKey
			r.tick() // a good poll first, so that the API's series exist
			if tc.handler == nil {
				tc.handler = echoing(r.api, tc.suffix, tc.status, tc.body)
			}
			r.api.answer(tc.handler)
			for range 2 {
				r.tick()
				r.clock.Advance(time.Hour) // past any rate limit: every line is written
			}
			_, err := r.poller.Poll(context.Background())
			where := map[string]string{"log": r.logs.String(), "/metrics": r.exposition(t)}
			if err != nil {
				where["error"] = err.Error()
			}
			for name, text := range where {
				if part := keyPart(text, leakKey); part != "" {
					t.Errorf("%s holds %q of the key:\n%s", name, part, text)
				}
			}
		})
	}
}
