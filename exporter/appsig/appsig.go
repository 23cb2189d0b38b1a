// Package appsig checks the signatures of LiveSwitch's application
// webhooks: every application and channel webhook carries
// X-ApplicationSignature, base64 of HMAC-SHA256 over the raw request body
// keyed with the application's shared secret. Server webhooks are not
// signed. The secrets come from a YAML file of applicationId: secret,
// re-read when it changes (File).
package appsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Header carries the signature of an application webhook.
const Header = "X-ApplicationSignature"

// Sign returns the signature LiveSwitch sends with body for an application
// of the given secret (taken as its UTF-8 bytes).
func Sign(body []byte, secret string) string {
	return base64.StdEncoding.EncodeToString(mac(body, secret))
}

func mac(body []byte, secret string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return h.Sum(nil)
}

// Reason says why a body was refused; its String is the value of the
// reason label of the refusals' counter.
type Reason uint8

// Reasons a signed body is refused.
const (
	// ReasonSeveralApplications: the events name more than one
	// application, each with its own secret, so no one signature holds.
	ReasonSeveralApplications Reason = iota
	// ReasonNoApplication: an event names no application.
	ReasonNoApplication
	// ReasonUnknownApplication: the file has no secret for it.
	ReasonUnknownApplication
	// ReasonMissing: no X-ApplicationSignature header.
	ReasonMissing
	// ReasonMalformed: the header is not base64 of 32 bytes.
	ReasonMalformed
	// ReasonMismatch: the signature is not the body's under the secret.
	ReasonMismatch
	numReasons
)

var reasonNames = [numReasons]string{"several_applications", "no_application", "unknown_application",
	"missing", "malformed", "mismatch"}

// String returns the reason as exported in the reason label.
func (r Reason) String() string { return reasonNames[r] }

// Reasons lists every reason, for counters initialised at zero.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// Error refuses a body; its text is a one-line reason fit for the sender,
// which never holds a secret.
type Error struct {
	Reason Reason
	// Application is the application concerned, "" when not one.
	Application string
	text        string
}

func (e *Error) Error() string { return e.text }

func refuse(r Reason, app, format string, args ...any) *Error {
	return &Error{Reason: r, Application: app, text: fmt.Sprintf(format, args...)}
}

// Verify checks that signature (the header's value) is body's under the
// secret of the one application its events name (applicationIDs, "" for
// events that name none), comparing the raw bytes in constant time.
func Verify(secrets Secrets, body []byte, signature string, applicationIDs []string) error {
	switch {
	case len(applicationIDs) == 0 || slices.Contains(applicationIDs, ""):
		return refuse(ReasonNoApplication, "", "an event names no application (no applicationId), so no secret can verify the body")
	case len(applicationIDs) != 1:
		return refuse(ReasonSeveralApplications, "", "the events name %d applications; LiveSwitch signs each application's webhooks with its own secret", len(applicationIDs))
	}
	app := applicationIDs[0]
	secret, ok := secrets[app]
	switch {
	case !ok:
		return refuse(ReasonUnknownApplication, app, "no secret is configured for application %s", quote(app))
	case signature == "":
		return refuse(ReasonMissing, app, "missing %s header: application webhooks must be signed", Header)
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return refuse(ReasonMalformed, app, "%s is not base64 of an HMAC-SHA256", Header)
	}
	if !hmac.Equal(got, mac(body, secret)) {
		return refuse(ReasonMismatch, app, "%s does not match the body under the secret of application %s", Header, quote(app))
	}
	return nil
}

// quote bounds an application id quoted in a reason.
func quote(s string) string {
	if len(s) > 64 {
		return strconv.Quote(strings.ToValidUTF8(s[:64], "")) + "…"
	}
	return strconv.Quote(s)
}
