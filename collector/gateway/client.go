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
	timeout time.Duration
	metrics *requestMetrics
}

// PollError says why a poll failed, in words fit for a log line: it names
// the endpoint, never the URL or the key.
type PollError struct {
	Endpoint string
	Reason   string
}

func (e *PollError) Error() string { return e.Endpoint + ": " + e.Reason }

// get fetches path and returns the body of a 200 answer; any other answer,
// no answer in time or a body over maxBodyBytes is a *PollError.
func (c *client) get(ctx context.Context, endpoint, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, &PollError{endpoint, "cannot build the request"}
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
		return nil, &PollError{endpoint, reason}
	}
	defer resp.Body.Close()
	body, err := readAtMost(resp.Body, maxBodyBytes)
	code := strconv.Itoa(resp.StatusCode)
	if err != nil && !errors.Is(err, errTooLarge) {
		code, _ = transportFailure(err, c.timeout)
	}
	c.metrics.observe(endpoint, code, time.Since(start))
	switch {
	case resp.StatusCode != http.StatusOK:
		return nil, &PollError{endpoint, statusReason(resp, body)}
	case err != nil:
		_, reason := transportFailure(err, c.timeout)
		return nil, &PollError{endpoint, reason}
	}
	return body, nil
}

var errTooLarge = fmt.Errorf("the answer is larger than %d MiB", maxBodyBytes>>20)

// readAtMost reads r to its end, refusing more than limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
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
		return "", err.Error()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout", fmt.Sprintf("no complete answer within %s (--liveswitch.api-timeout)", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "error", "no answer: " + err.Error()
}

// statusReason describes a non-200 answer, with the title of an RFC 7807
// problem if the API sent one.
func statusReason(resp *http.Response, body []byte) string {
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
		reason += fmt.Sprintf(" (problem: %q)", printable(problem.Title, 80))
	}
	return reason
}

// printable keeps text from an answer fit for a log line: control
// characters and runs of white space become single spaces, and it is cut
// after n bytes.
func printable(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
