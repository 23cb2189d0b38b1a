package exporter

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

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
// tokens show too): it logs every delivery it answers, and counts it in
// requests by the status of the answer.
//
// It costs no allocation for an applied (204) delivery: the exchange that
// watches the answer is pooled, and the body is not copied unless the
// delivery is rejected (the webhook handler hands over the body it read,
// see keepBody; so every handler between Record and the webhook's must pass
// w on unwrapped).
func (l *DeliveryLog) Record(now func() time.Time, requests *prometheus.CounterVec, next http.Handler) http.Handler {
	byCode := map[int]prometheus.Counter{}
	for _, code := range countedCodes {
		byCode[code] = requests.WithLabelValues(strconv.Itoa(code))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := exchanges.Get().(*exchange)
		x.ResponseWriter, x.status = w, http.StatusOK
		next.ServeHTTP(x, r)
		if c, ok := byCode[x.status]; ok {
			c.Inc()
		} else {
			requests.WithLabelValues(strconv.Itoa(x.status)).Inc()
		}
		l.add(x.delivery(now(), r.RemoteAddr))
		x.reset()
		exchanges.Put(x)
	})
}

// countedCodes are the answers of the webhook, whose series exist from the
// start.
var countedCodes = []int{202, 204, 400, 401, 403, 405, 413, 415, 503}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// exchange watches one webhook answer: its status, the start of its text,
// and the body the handler read.
type exchange struct {
	http.ResponseWriter
	status int
	reply  []byte
	body   []byte // the handler's, not a copy; valid until the handler returns
}

func (x *exchange) reset() {
	x.ResponseWriter, x.body, x.reply = nil, nil, x.reply[:0]
}

func (x *exchange) WriteHeader(code int) {
	x.status = code
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(p []byte) (int, error) {
	if room := maxKeptReply - len(x.reply); room > 0 {
		x.reply = append(x.reply, p[:min(len(p), room)]...)
	}
	return x.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// keepBody is how the webhook handler lends the delivery log the body it
// read (w is the exchange, unless the handler runs without the log).
func keepBody(w http.ResponseWriter, body []byte) {
	if x, ok := w.(*exchange); ok {
		x.body = body
	}
}

func (x *exchange) delivery(at time.Time, remote string) Delivery {
	d := Delivery{Time: at, Remote: remote, Status: x.status, Accepted: x.status/100 == 2}
	switch {
	case x.status == http.StatusNoContent:
		d.Outcome = "applied"
	case d.Accepted:
		d.Outcome = string(bytes.TrimSpace(x.reply))
	case x.status == http.StatusServiceUnavailable:
		d.Outcome, d.Reason = "retry", string(bytes.TrimSpace(x.reply))
	default:
		d.Outcome, d.Reason = "rejected", string(bytes.TrimSpace(x.reply))
		d.Body, d.BodyTruncated = keptBody(x.body)
	}
	return d
}

// keptBody returns the start of a rejected body as text, at most
// maxKeptBody bytes cut at a character boundary.
func keptBody(body []byte) (string, bool) {
	if len(body) <= maxKeptBody {
		return strings.ToValidUTF8(string(body), "\uFFFD"), false
	}
	b := body[:maxKeptBody]
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ { // a character cut in two
		b = b[:len(b)-1]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), true
}
