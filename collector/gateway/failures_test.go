package gateway

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// slow answers nothing until the request is given up.
func slow(*fixtureAPI) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
}

// TestFailureEpisodesLogged: within one minute, failure and recovery
// episodes of different reasons follow one another. The first failure of
// each episode is logged at once, and each change of reason; only repeats
// of one reason wait; each recovery is logged at once, with how many polls
// failed.
func TestFailureEpisodesLogged(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Timeout = 3 * time.Second }) // long enough for 16 MiB, under -race too
	r.clock.stopped.Store(true)
	ok := func(*fixtureAPI) http.HandlerFunc { return nil }
	status := func(code int) func(*fixtureAPI) http.HandlerFunc {
		return answerOn("/v1/mediaservers", code, "application/problem+json", `{"title":"Refused","status":0}`)
	}
	const recovered = `level=INFO msg="The Gateway's REST API answers again"`
	const failed = `level=WARN msg="Polling the Gateway's REST API failed;`
	var want []string // lines, in order: a failure's reason or the recovery
	for _, step := range []struct {
		answer func(*fixtureAPI) http.HandlerFunc
		line   string // the line this poll adds, if any
	}{
		{ok, ""},
		{status(403), `reason="mediaservers: HTTP 403: the API key was refused`},
		{status(403), ""},
		{ok, recovered + " failures=2"},
		{answerOn("/v1.0/applications", 404, "application/problem+json", `{"title":"Not Found"}`), `reason="applications: HTTP 404`},
		{status(500), `reason="mediaservers: HTTP 500`},
		{servers("<html><body>Login</body></html>"), `reason="mediaservers: the answer is not JSON but markup`},
		{servers(`[{"id":"ms-1"`), `reason="mediaservers: the answer is not valid JSON`},
		{servers(`[{"id":"ms-1"`), ""},
		{servers("Service Unavailable"), `reason="mediaservers: the answer is not a JSON array`},
		{slow, `reason="mediaservers: no complete answer within 3s`},
		{servers("[" + strings.Repeat(" ", 16<<20) + "]"), `reason="mediaservers: the answer is larger than 16 MiB`},
		{ok, recovered + " failures=8"},
		{status(500), `reason="mediaservers: HTTP 500`},
		{status(500), ""},
		{status(500), ""},
		{ok, recovered + " failures=3"},
		{ok, ""},
	} {
		if h := step.answer(r.api); h != nil {
			r.api.answer(h)
		} else {
			r.api.hostile.Store(nil)
		}
		r.tick()
		r.clock.Advance(time.Second)
		if step.line != "" {
			want = append(want, step.line)
		}
	}
	lines := regexp.MustCompile(`(?m)^.*level=(WARN|INFO|ERROR).*$`).FindAllString(r.logs.String(), -1)
	var got []string
	for _, l := range lines {
		if !strings.Contains(l, `msg="Polling the Gateway's REST API"`) {
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) || (!strings.HasPrefix(w, "level=INFO") && !strings.Contains(got[i], failed)) {
			t.Errorf("line %d: %s\nwant %s", i, got[i], w)
		}
	}
}
