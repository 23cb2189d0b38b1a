package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// ackLedger is the model the durability tests check the exporter against:
// every event sent, per server, with the answer it got. A server's events
// go out one at a time, with rising timestamps, so after any sequence of
// crashes and restarts the exporter must show each server in the state of
// one event it was sent: its newest acknowledged event, or a later one whose
// answer was lost. Never an older one (an acknowledged event lost), never
// one answered 503 (an event applied although the sender was told to
// retry).
type ackLedger struct {
	mu       sync.Mutex
	servers  map[string][]sentEvent // by server id, in timestamp order
	next     map[string]int64       // next timestamp per server
	statuses map[int]int            // answers by HTTP status; 0: no answer
}

// sentEvent is one event as the sender saw it.
type sentEvent struct {
	ms     int64
	action string
	status int // 0 while unanswered or when the answer was lost
}

// lifecycle is the order each server goes through; every event of it is a
// lifecycle event, so the exporter's state-change time is the timestamp of
// the newest event it applied.
var lifecycle = []string{"started", "registered", "unregistered", "registered", "unregistered", "stopped"}

var stateAfter = map[string]string{"started": "running", "registered": "registered",
	"unregistered": "unregistered", "stopped": "stopped"}

func newAckLedger() *ackLedger {
	return &ackLedger{servers: map[string][]sentEvent{}, next: map[string]int64{}, statuses: map[int]int{}}
}

// acked is the number of acknowledged events so far.
func (l *ackLedger) acked() int { return l.statusCount(http.StatusNoContent) }

func (l *ackLedger) statusCount(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[code]
}

// waitAcked polls until n events in all were acknowledged.
func (l *ackLedger) waitAcked(t testing.TB, n int) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("%d acknowledged events", n), func() bool { return l.acked() >= n })
}

// waitStatus polls until some webhook was answered code.
func (l *ackLedger) waitStatus(t testing.TB, code int) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("an answer %d", code), func() bool { return l.statusCount(code) > 0 })
}

// send records the next event of server id as sent, before it is sent, so
// that an event whose answer is lost is known.
func (l *ackLedger) send(id string, base int64) (index int, ev sentEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := max(l.next[id], base)
	l.next[id] = ms + 1
	ev = sentEvent{ms: ms, action: lifecycle[(ms-base)%int64(len(lifecycle))]}
	l.servers[id] = append(l.servers[id], ev)
	return len(l.servers[id]) - 1, ev
}

func (l *ackLedger) answered(id string, index, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.servers[id][index].status = status
	l.statuses[status]++
}

// sendUntilStopped posts events for the sender's servers, in order, each to
// the exporter target names, until stop is closed; an exporter that does not
// answer is tried again with the next event (LiveSwitch would retry the same
// one; a new one is the harder case for the model).
func sendUntilStopped(target func() string, l *ackLedger, sender, servers int, base int64, stop <-chan struct{}) {
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("s%02d-%d", sender, i%servers)
		index, ev := l.send(id, base)
		body := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":%q,"region":"r"}}`,
			ev.ms, ev.action, id)
		resp, err := client.Post(target(), "application/json", strings.NewReader(body))
		if err != nil {
			l.answered(id, index, 0)
			continue // down: keep trying until told to stop
		}
		l.answered(id, index, answerStatus(resp))
	}
}

// uncertain is the status the ledger records for a 503 whose body says the
// events may have been stored (the store's answer was lost): like a lost
// answer, either outcome is right.
const uncertain = 0

// answerStatus reads an answer: its status, or uncertain for a 503 that
// says it is not known whether the events were stored, and for a 202 whose
// events were stored but not seen applied in time (pending).
func answerStatus(resp *http.Response) int {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable &&
		(strings.HasPrefix(string(body), "not confirmed") || strings.HasPrefix(string(body), "stored but not confirmed")):
		return uncertain
	case resp.StatusCode == http.StatusAccepted && strings.Contains(string(body), "pending="):
		return uncertain
	}
	return resp.StatusCode
}

// observed is what the exporter shows of one server.
type observed struct {
	state    string
	changeMs int64
	events   float64
}

// observe reads every server's state, state-change time and applied event
// count from a scrape.
func observe(t testing.TB, p *process) map[string]observed {
	t.Helper()
	families := scrape(t, p)
	out := map[string]observed{}
	for _, m := range families["liveswitch_server_state"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			o := out[label(m, "id")]
			o.state = label(m, "state")
			out[label(m, "id")] = o
		}
	}
	for _, m := range families["liveswitch_server_state_change_timestamp_seconds"].GetMetric() {
		o := out[label(m, "id")]
		o.changeMs = int64(math.Round(m.GetGauge().GetValue() * 1000))
		out[label(m, "id")] = o
	}
	for _, m := range families["liveswitch_server_events_total"].GetMetric() {
		o := out[label(m, "id")]
		o.events += m.GetCounter().GetValue()
		out[label(m, "id")] = o
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// checkLedger checks the exporter's fleet against the model, exactly for
// every acknowledged event, and returns how many acknowledged events it
// checked.
func checkLedger(t *testing.T, p *process, l *ackLedger) int {
	t.Helper()
	seen := observe(t, p)
	l.mu.Lock()
	defer l.mu.Unlock()
	checked := 0
	for id, events := range l.servers {
		checked += checkServer(t, id, events, seen[id])
	}
	return checked
}

// checkServer checks one server; it returns its acknowledged events.
func checkServer(t *testing.T, id string, events []sentEvent, got observed) int {
	t.Helper()
	acked := 0
	var newestAcked int64 = -1
	for _, ev := range events {
		if ev.status == http.StatusNoContent {
			acked++
			newestAcked = ev.ms
		}
	}
	if got.state == "" {
		if acked > 0 {
			t.Errorf("server %s: absent, but %d of its events were acknowledged", id, acked)
		}
		return acked
	}
	i := slices.IndexFunc(events, func(ev sentEvent) bool { return ev.ms == got.changeMs })
	switch {
	case i < 0:
		t.Errorf("server %s: state changed at %d ms, a time none of its events had", id, got.changeMs)
	case got.changeMs < newestAcked:
		t.Errorf("server %s: in the state of its event at %d ms; the later event at %d ms was acknowledged and is lost",
			id, got.changeMs, newestAcked)
	case events[i].status != 0 && events[i].status != http.StatusNoContent:
		t.Errorf("server %s: in the state of its event at %d ms, which was answered %d (not applied)", id, got.changeMs, events[i].status)
	case got.state != stateAfter[events[i].action]:
		t.Errorf("server %s: state %s, but its newest applied event (%d ms) was %s", id, got.state, got.changeMs, events[i].action)
	}
	// Every acknowledged event is counted once; of the unanswered ones up
	// to the state-change time, any number may have been applied.
	unanswered := 0
	for _, ev := range events {
		if ev.status == 0 && ev.ms <= got.changeMs {
			unanswered++
		}
	}
	if got.events < float64(acked) || got.events > float64(acked+unanswered) {
		t.Errorf("server %s: %v events applied; %d were acknowledged and %d unanswered (of %d sent)",
			id, got.events, acked, unanswered, len(events))
	}
	return acked
}

// sumByLabel sums a family's values (gauges and counters) by one label.
func sumByLabel(mf *dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		out[label(m, name)] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return out
}
