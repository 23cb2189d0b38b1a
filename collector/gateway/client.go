package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// client makes the requests of a poll.
type client struct {
	http    *http.Client
	base    string
	key     string
	mask    keyMask
	timeout time.Duration
	metrics *metrics
}

// PollError says why a poll failed, in words fit for a log line: it names
// the endpoint, never the URL, and holds no run of the key (see keyMask).
type PollError struct {
	Endpoint string
	Reason   string
	// kind sorts reasons for the log: a change of kind is logged at once,
	// a repeat of one waits (see failureLog). Reasons vary where kinds do
	// not: a problem's title, a byte offset.
	kind string
	// status is the HTTP status of the answer, 0 if none came.
	status int
}

func (e *PollError) Error() string { return e.Endpoint + ": " + e.Reason }

// failure builds a *PollError, its reason masked.
func (c *client) failure(endpoint, kind, reason string) *PollError {
	return &PollError{Endpoint: endpoint, Reason: c.mask.mask(reason), kind: kind}
}

// get fetches path and returns the body of a 200 answer; any other answer,
// no answer in time or a body over maxBodyBytes is a *PollError.
func (c *client) get(ctx context.Context, endpoint, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, c.failure(endpoint, "request", "cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		code, reason := transportFailure(err, c.timeout)
		c.metrics.observe(endpoint, code, time.Since(start))
		return nil, c.failure(endpoint, code, reason)
	}
	defer resp.Body.Close()
	body, err := readAtMost(resp.Body, resp.ContentLength, maxBodyBytes)
	code := strconv.Itoa(resp.StatusCode)
	if err != nil && !errors.Is(err, errTooLarge) {
		code, _ = transportFailure(err, c.timeout)
	}
	c.metrics.observe(endpoint, code, time.Since(start))
	switch {
	case resp.StatusCode != http.StatusOK:
		e := c.failure(endpoint, "HTTP "+strconv.Itoa(resp.StatusCode), statusReason(resp, body, c.mask))
		e.status = resp.StatusCode
		return nil, e
	case err != nil:
		kind, reason := transportFailure(err, c.timeout)
		return nil, c.failure(endpoint, kind, reason)
	}
	return body, nil
}

var errTooLarge = fmt.Errorf("the answer is larger than %d MiB", maxBodyBytes>>20)

// readAtMost reads r to its end, refusing more than limit bytes, at once
// if the answer announced its length (size, -1 if unknown) is over it.
func readAtMost(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, errTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(body)) > limit {
		return nil, errTooLarge
	}
	return body, err
}

// transportFailure sorts a failure to get an answer into the code label and
// a reason. The *url.Error around it is dropped: it repeats the URL.
func transportFailure(err error, timeout time.Duration) (code, reason string) {
	if errors.Is(err, errTooLarge) {
		return "too large", err.Error()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout", fmt.Sprintf("no complete answer within %s (--liveswitch.api-timeout)", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "error", "no answer: " + printable(err.Error(), maxReasonText)
}

// statusReason describes a non-200 answer, with the title of an RFC 7807
// problem if the API sent one. The title is masked before it is cut, and
// again after, so that neither a whole key nor a cut one shows.
func statusReason(resp *http.Response, body []byte, mask keyMask) string {
	reason := "HTTP " + strconv.Itoa(resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		reason += ": the API key was refused (check --liveswitch.api-key-file)"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		reason += ": redirects are not followed (they would carry the API key elsewhere); point --liveswitch.api-url at the final address"
	}
	var problem struct {
		Title string `json:"title"`
	}
	if json.Unmarshal(body, &problem) == nil && problem.Title != "" {
		title := mask.mask(printable(mask.mask(clip(problem.Title)), maxProblemTitle))
		reason += fmt.Sprintf(" (problem: %q)", title)
	}
	return reason
}

// Bounds of text from an answer in a reason.
const (
	maxProblemTitle = 80
	maxReasonText   = 200
)

// printable keeps text from an answer fit for a log line: control
// characters and runs of white space become single spaces, and it is cut
// after n bytes.
func printable(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(clip(s), func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return strings.ToValidUTF8(s, "")
}

// maxScannedText bounds the text of an answer that is read for a reason.
const maxScannedText = 4 << 10

// clip cuts s after maxScannedText bytes, so that text of megabytes costs
// no more to print or mask than text of kilobytes. A key cut there is
// still masked: a run of it is enough (see keyMask).
func clip(s string) string {
	if len(s) > maxScannedText {
		return s[:maxScannedText]
	}
	return s
}
