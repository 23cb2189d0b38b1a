package appsig

import (
	"errors"
	"strings"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestSignMatchesOpenSSL: Sign computes what openssl computes.
func TestSignMatchesOpenSSL(t *testing.T) {
	for _, tc := range []struct{ body, secret string }{
		{`{"timestamp":1700000000000,"type":"client.registered","client":{"applicationId":"a"}}`, "s3cret"},
		{"", "x"},
		{"[\n]\n", "é ünïcödé secret with spaces"},
	} {
		if got, want := Sign([]byte(tc.body), tc.secret), testenv.OpenSSLSignature(t, []byte(tc.body), tc.secret); got != want {
			t.Errorf("Sign(%q, %q) = %s, openssl says %s", tc.body, tc.secret, got, want)
		}
	}
}

func TestVerifyReasons(t *testing.T) {
	secrets := Secrets{"a": "secret-a", "b": "secret-b"}
	body := []byte(`{"timestamp":1700000000000,"type":"client.registered","client":{"applicationId":"a"}}`)
	good := testenv.OpenSSLSignature(t, body, "secret-a")
	for _, tc := range []struct {
		name      string
		signature string
		apps      []string
		reason    Reason
		text      string
	}{
		{"valid", good, []string{"a"}, 0, ""},
		{"valid, padded with spaces", " " + good + " ", []string{"a"}, 0, ""},
		{"several applications", good, []string{"a", "b"}, ReasonSeveralApplications, "the events name 2 applications"},
		{"an event without application", good, []string{"a", ""}, ReasonNoApplication, "names no application"},
		{"unknown application", good, []string{"c"}, ReasonUnknownApplication, `no secret is configured for application "c"`},
		{"missing", "", []string{"a"}, ReasonMissing, "missing X-ApplicationSignature"},
		{"not base64", "%%%", []string{"a"}, ReasonMalformed, "not base64"},
		{"base64 of too few bytes", "AAAA", []string{"a"}, ReasonMalformed, "not base64"},
		{"hex instead of base64", strings.Repeat("ab", 32), []string{"a"}, ReasonMalformed, "not base64"},
		{"another application's secret", testenv.OpenSSLSignature(t, body, "secret-b"), []string{"a"}, ReasonMismatch, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(secrets, body, tc.signature, tc.apps)
			var refused *Error
			switch {
			case tc.text == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.text == "":
			case !errors.As(err, &refused) || refused.Reason != tc.reason || !strings.Contains(err.Error(), tc.text):
				t.Fatalf("got %v, want %s containing %q", err, tc.reason, tc.text)
			case strings.Contains(err.Error(), "secret-"):
				t.Fatalf("the reason quotes a secret: %v", err)
			}
		})
	}
}
