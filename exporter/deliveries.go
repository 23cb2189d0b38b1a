package exporter

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ring"
)

// Bounds of the delivery history: it lives in memory only. Each class of
// delivery has its own history, so that a flood of one never pushes the
// others out: the last rejection stays visible however fast accepted
// deliveries come.
const (
	// AppliedKept is how many applied (204) deliveries are remembered.
	AppliedKept = 200
	// NotAppliedKept is how many deliveries accepted but not (all) applied
	// (202: duplicate, ignored, out of order, refused, pending) are
	// remembered.
	NotAppliedKept = 100
	// RejectedKept is how many deliveries not accepted (4xx, and 503 for a
	// retry) are remembered.
	RejectedKept = 100
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

// DeliveryClass sorts deliveries by what became of them.
type DeliveryClass uint8

// Classes of deliveries, each with its own history.
const (
	// ClassApplied: 204, every event applied.
	ClassApplied DeliveryClass = iota
	// ClassNotApplied: another 2xx (202): accepted and stored, but some
	// events deliberately not applied; LiveSwitch must not retry.
	ClassNotApplied
	// ClassRejected: not accepted (4xx; 503 asks for a retry).
	ClassRejected
	numClasses
)

var classNames = [numClasses]string{"applied", "not-applied", "rejected"}

// String names the class, as the page's CSS does.
func (c DeliveryClass) String() string { return classNames[c] }

// ClassOf is the class of an answer's status.
func ClassOf(status int) DeliveryClass {
	switch {
	case status == http.StatusNoContent:
		return ClassApplied
	case status/100 == 2:
		return ClassNotApplied
	}
	return ClassRejected
}

// DeliveryCount is how many deliveries got one answer since the exporter
// started, and when the last one came.
type DeliveryCount struct {
	Status int
	// Outcome is "applied", "rejected", "retry", or for a 202 one of the
	// outcomes it names besides applied (duplicate, out_of_order, ignored,
	// refused, invalid, pending; "other" for anything else): a 202 naming
	// two counts under each.
	Outcome string
	Count   uint64
	Last    time.Time
}

type countKey struct {
	status  int
	outcome string
}

// DeliveryLog remembers the last webhook deliveries, applied, accepted but
// not applied, and rejected, each class apart, and counts every delivery
// by its answer since the start: for the status page and /api/v1/events,
// the first thing to look at when LiveSwitch is wired to the exporter.
type DeliveryLog struct {
	mu     sync.Mutex
	kept   [numClasses]ring.Buffer[Delivery]
	totals [numClasses]uint64
	counts map[countKey]*DeliveryCount
}

// kept bounds the history of each class.
var kept = [numClasses]int{AppliedKept, NotAppliedKept, RejectedKept}

// NewDeliveryLog returns an empty log.
func NewDeliveryLog() *DeliveryLog {
	l := &DeliveryLog{counts: map[countKey]*DeliveryCount{}}
	for c := range numClasses {
		l.kept[c] = ring.New[Delivery](kept[c])
	}
	return l
}

func (l *DeliveryLog) add(d Delivery) {
	c := ClassOf(d.Status)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept[c].Add(d)
	l.totals[c]++
	if c == ClassNotApplied {
		l.countNotApplied(d)
		return
	}
	l.count(d.Status, d.Outcome, d.Time)
}

// count counts one delivery under status and outcome, which come from a
// closed set, so that the counts stay a handful of entries.
func (l *DeliveryLog) count(status int, outcome string, at time.Time) {
	k := countKey{status, outcome}
	c := l.counts[k]
	if c == nil {
		c = &DeliveryCount{Status: status, Outcome: outcome}
		l.counts[k] = c
	}
	c.Count++
	c.Last = at
}

// notAppliedOutcomes are the outcomes a 202 names besides applied.
var notAppliedOutcomes = []string{
	fleet.OutcomeDuplicate.String(), fleet.OutcomeOutOfOrder.String(), fleet.OutcomeIgnored.String(),
	fleet.OutcomeRefused.String(), fleet.OutcomeInvalid.String(), "pending",
}

// countNotApplied counts a 202 under each outcome its answer names
// ("applied=1 duplicate=2"), applied aside.
func (l *DeliveryLog) countNotApplied(d Delivery) {
	counted := false
	for rest := d.Outcome; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, " ")
		name, _, _ := strings.Cut(part, "=")
		if name == "" || name == fleet.OutcomeApplied.String() {
			continue
		}
		if !slices.Contains(notAppliedOutcomes, name) {
			name = "other"
		}
		l.count(d.Status, name, d.Time)
		counted = true
	}
	if !counted {
		l.count(d.Status, "other", d.Time)
	}
}

// Recent returns the remembered deliveries of every class, newest first.
func (l *DeliveryLog) Recent() []Delivery {
	l.mu.Lock()
	var all []Delivery
	for c := range l.kept {
		all = append(all, l.kept[c].NewestFirst()...)
	}
	l.mu.Unlock()
	slices.SortStableFunc(all, func(a, b Delivery) int { return b.Time.Compare(a.Time) })
	return all
}

// DeliveryHistory is a copy of the log for the status page.
type DeliveryHistory struct {
	// Last holds the last deliveries of each class, newest first, at
	// most n each.
	Last [numClasses][]Delivery
	// Totals count the deliveries of each class since the start.
	Totals [numClasses]uint64
	// Counts are the counts since the start, by status then outcome.
	Counts []DeliveryCount
}

// History copies the last n deliveries of each class, and the counts.
func (l *DeliveryLog) History(n int) DeliveryHistory {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := DeliveryHistory{Totals: l.totals}
	for c := range l.kept {
		last := l.kept[c].NewestFirst()
		h.Last[c] = last[:min(n, len(last))]
	}
	for _, c := range l.counts {
		h.Counts = append(h.Counts, *c)
	}
	slices.SortFunc(h.Counts, func(a, b DeliveryCount) int {
		return cmp.Or(cmp.Compare(a.Status, b.Status), cmp.Compare(a.Outcome, b.Outcome))
	})
	return h
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
