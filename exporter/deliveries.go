package exporter

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ring"
)

// Bounds of the delivery history: it lives in memory only.
const (
	// DeliveriesKept is how many webhook deliveries are remembered.
	DeliveriesKept = 200
	// maxKeptBody is how much of a rejected body is kept.
	maxKeptBody = 1 << 10
	// maxKeptReply bounds the reason or outcome kept from the answer.
	maxKeptReply = 512
)

// Delivery is one webhook request as the exporter answered it. It holds no
// header, URL or query string, so a token sent with it is never shown.
type Delivery struct {
	Time   time.Time `json:"time"`
	Remote string    `json:"remote"`
	Status int       `json:"status"`
	// Accepted is true for 2xx answers: the events are in the fleet's store.
	Accepted bool `json:"accepted"`
	// Outcome summarises what the exporter did: "applied", the outcomes of a
	// partly applied batch ("applied=1 duplicate=1"), "rejected" or "retry".
	Outcome string `json:"outcome"`
	// Reason is the exporter's one-line answer to a delivery it did not
	// accept.
	Reason string `json:"reason,omitempty"`
	// Body is the start of a rejected body (at most 1 KiB).
	Body          string `json:"body,omitempty"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
}

// DeliveryLog remembers the last DeliveriesKept webhook deliveries, accepted
// or rejected, for the status page and /api/v1/events: the first thing to
// look at when LiveSwitch is wired to the exporter.
type DeliveryLog struct {
	mu   sync.Mutex
	kept ring.Buffer[Delivery]
}

// NewDeliveryLog returns an empty log.
func NewDeliveryLog() *DeliveryLog { return &DeliveryLog{kept: ring.New[Delivery](DeliveriesKept)} }

func (l *DeliveryLog) add(d Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept.Add(d)
}

// Recent returns the remembered deliveries, newest first.
func (l *DeliveryLog) Recent() []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kept.NewestFirst()
}

// Record wraps the webhook's handler chain (guards included, so refused
// tokens show too) and logs every delivery it answers.
func (l *DeliveryLog) Record(now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &headCapture{r: r.Body}
		r.Body = body
		rec := &replyCapture{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		l.add(delivery(now(), r.RemoteAddr, rec, body))
	})
}

func delivery(at time.Time, remote string, rec *replyCapture, body *headCapture) Delivery {
	d := Delivery{Time: at, Remote: remote, Status: rec.status, Accepted: rec.status/100 == 2}
	reply := strings.TrimSpace(rec.reply.String())
	switch {
	case rec.status == http.StatusNoContent:
		d.Outcome = "applied"
	case d.Accepted:
		d.Outcome = reply
	case rec.status == http.StatusServiceUnavailable:
		d.Outcome, d.Reason = "retry", reply
	default:
		d.Outcome, d.Reason = "rejected", reply
		d.Body, d.BodyTruncated = body.kept()
	}
	return d
}

// headCapture keeps the first bytes of a request body as the handler reads it.
type headCapture struct {
	r    io.ReadCloser
	head bytes.Buffer
	more bool
}

func (c *headCapture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	room := maxKeptBody - c.head.Len()
	switch {
	case n > room:
		c.head.Write(p[:room])
		c.more = true
	default:
		c.head.Write(p[:n])
	}
	return n, err
}

func (c *headCapture) Close() error { return c.r.Close() }

// kept returns the captured body as text, cut at a character boundary.
func (c *headCapture) kept() (string, bool) {
	b := c.head.Bytes()
	if c.more { // drop a character cut in two by the limit
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), c.more
}

// replyCapture notes the status and the start of the answer.
type replyCapture struct {
	http.ResponseWriter
	status int
	reply  bytes.Buffer
}

func (c *replyCapture) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *replyCapture) Write(p []byte) (int, error) {
	if room := maxKeptReply - c.reply.Len(); room > 0 {
		c.reply.Write(p[:min(len(p), room)])
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *replyCapture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
