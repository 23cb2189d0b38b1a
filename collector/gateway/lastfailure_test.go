package gateway

import (
	"strings"
	"testing"
)

// TestLastFailure: the poller tells the status page why its last poll
// failed, with the key masked and without the URL, and keeps telling it
// after the API answers again.
func TestLastFailure(t *testing.T) {
	r := newRig(t, nil)
	r.tick()
	if at, reason := r.poller.LastFailure(); !at.IsZero() || reason != "" {
		t.Fatalf("a failure before any: %v %q", at, reason)
	}
	r.api.answer(answerOn("/v1/mediaservers", 401, "application/problem+json",
		`{"title":"key `+testKey+` unknown","status":401}`)(r.api))
	r.tick()
	at, reason := r.poller.LastFailure()
	want := `mediaservers: HTTP 401: the API key was refused (check --liveswitch.api-key-file) (problem: "key <api-key> unknown")`
	if at.IsZero() || reason != want {
		t.Fatalf("last failure %v %q, want %q", at, reason, want)
	}
	if strings.Contains(reason, r.srv.URL) || strings.Contains(reason, testKey) {
		t.Fatalf("the reason holds the URL or the key: %q", reason)
	}
	r.api.hostile.Store(nil)
	r.tick()
	if again, still := r.poller.LastFailure(); again != at || still != reason {
		t.Errorf("after a good poll: %v %q, want the failure kept", again, still)
	}
}
