package applications

import (
	"slices"
	"testing"
)

func TestClassifyError(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Cause
	}{
		{"", CauseUnknown},
		{"   ", CauseUnknown},
		{"IceFailed ICE negotiation failed", CauseICE},
		{"ICEConnectionFailed", CauseICE},
		{"no candidates gathered", CauseICE},
		{"TURN allocation refused", CauseICE},
		{"network unreachable", CauseICE},
		{"DTLS handshake failed", CauseDTLS},
		{"DtlsHandshakeFailed", CauseDTLS},
		{"certificate fingerprint mismatch", CauseDTLS},
		{"Media server unavailable", CauseMedia},
		{"codec negotiation failed (SDP)", CauseMedia},
		{"Timeout", CauseTimeout},
		{"Connection timed out", CauseTimeout},
		{"ConnectionTimeout", CauseTimeout},
		{"ICE timed out", CauseICE},            // the layer wins over the timeout
		{"DTLS handshake timeout", CauseDTLS},  // idem
		{"device not found", CauseOther},       // not ICE: "device" is a word of its own
		{"service unavailable", CauseOther},    // nor "service"
		{"notice: remote hung up", CauseOther}, // nor "notice"
		{"Unexpected", CauseOther},
		{"number", CauseOther}, // an error that was a JSON number
		{"object", CauseOther}, // an error object without text
		{"Échec de la négociation ICE", CauseICE},
	} {
		if got := ClassifyError(tc.text); got != tc.want {
			t.Errorf("ClassifyError(%q) = %s, want %s (words %q)", tc.text, got, tc.want, splitWords(tc.text))
		}
	}
}

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"IceFailed", []string{"ice", "failed"}},
		{"ICEConnectionFailed", []string{"ice", "connection", "failed"}},
		{"dtls_handshake-failed", []string{"dtls", "handshake", "failed"}},
		{"HTTP2Error", []string{"http2", "error"}},
		{"é", []string{"é"}},
		{"", nil},
	} {
		if got := splitWords(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestCauseNamesAreClosed: every cause has a label value, and they are
// distinct.
func TestCauseNamesAreClosed(t *testing.T) {
	seen := map[string]bool{}
	for c := range NumCauses {
		name := c.String()
		if name == "" || seen[name] {
			t.Fatalf("cause %d named %q", c, name)
		}
		seen[name] = true
	}
}
