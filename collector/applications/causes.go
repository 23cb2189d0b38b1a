package applications

import (
	"strings"
	"unicode"
)

// Cause is the class of a connection.failed's "error": a closed set, so
// that the raw text, which LiveSwitch does not document and a sender
// controls, never becomes a label value.
type Cause uint8

// Causes, as exported in the cause label.
const (
	// CauseICE: connectivity could not be established or was lost (ICE,
	// STUN, TURN, candidates, a network path).
	CauseICE Cause = iota
	// CauseDTLS: the secure handshake failed (DTLS, TLS, certificates,
	// fingerprints).
	CauseDTLS
	// CauseMedia: the media failed (media, codecs, tracks, streams, RTP,
	// SDP, a media server).
	CauseMedia
	// CauseTimeout: something timed out, with no more specific cause.
	CauseTimeout
	// CauseOther: an error that names none of the above.
	CauseOther
	// CauseUnknown: no error given (missing, null or empty).
	CauseUnknown
	NumCauses
)

var causeNames = [NumCauses]string{"ice", "dtls", "media", "timeout", "other", "unknown"}

// String returns the cause as exported in the cause label.
func (c Cause) String() string { return causeNames[c] }

// causeWords are the words that give each specific cause, in the order
// they are tried: the layer a failure names wins over a timeout it also
// mentions ("ICE timed out" is an ICE failure).
var causeWords = []struct {
	cause Cause
	words []string
}{
	{CauseICE, []string{"ice", "stun", "turn", "candidate", "candidates", "connectivity", "network", "unreachable", "nat"}},
	{CauseDTLS, []string{"dtls", "tls", "ssl", "certificate", "fingerprint", "handshake", "srtp"}},
	{CauseMedia, []string{"media", "mediaserver", "codec", "codecs", "track", "tracks", "stream", "streams", "rtp", "rtcp", "sdp", "audio", "video"}},
	{CauseTimeout, []string{"timeout", "timedout", "timed", "deadline", "expired"}},
}

// ClassifyError returns the cause of a connection's error text (as
// event.ApplicationEvent.Error holds it). The text is split into words at
// anything but letters and digits and at lower-to-upper case changes
// ("IceFailed" is "ice failed", "DTLSHandshake" "dtls handshake"), so
// that "device" or "service" is not ICE.
func ClassifyError(text string) Cause {
	if strings.TrimSpace(text) == "" {
		return CauseUnknown
	}
	words := map[string]bool{}
	for _, w := range splitWords(text) {
		words[w] = true
	}
	for _, c := range causeWords {
		for _, w := range c.words {
			if words[w] {
				return c.cause
			}
		}
	}
	return CauseOther
}

// splitWords cuts text into lower-case words of letters and digits, also
// at case changes: "ICEConnectionFailed" gives ice, connection, failed.
func splitWords(text string) []string {
	var words []string
	rs := []rune(text)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			words = append(words, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 && i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// "IceFailed": a lower letter then an upper one; "ICEConnection":
			// the last upper letter of a run followed by a lower one.
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return words
}
