package exporter

import (
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// pageNow is the clock of the page model's tests.
var pageNow = time.UnixMilli(t0).Add(time.Hour).UTC()

// fixedFleet is a FleetReader that always shows one snapshot.
type fixedFleet struct{ snap fleet.Snapshot }

func (f fixedFleet) Snapshot() fleet.Snapshot { return f.snap }
func (f fixedFleet) Server(fleet.Key) (fleet.Server, []fleet.AppliedEvent, bool) {
	return fleet.Server{}, nil, false
}

// lastFailure is a GatewayPolls whose last failure is given.
type lastFailure struct {
	at     time.Time
	reason string
}

func (l lastFailure) LastFailure() (time.Time, string) { return l.at, l.reason }

// fixedApps is an ApplicationReader.
type fixedApps []applications.Recent

func (a fixedApps) Recent() []applications.Recent { return a }

func ptr[T any](v T) *T { return &v }

func mediaServer(id string, state fleet.State) fleet.Server {
	return fleet.Server{Origin: "mediaserver", Info: event.Info{ID: id, Region: "eu", DeploymentID: "prod"}, State: state,
		LastActionMs: pageNow.Add(-10 * time.Minute).UnixMilli(), LastEventMs: pageNow.Add(-time.Minute).UnixMilli()}
}

// testFleet is three media servers, ms-3 up but not registered; the
// Gateway lists ms-1 (42% used), ms-2 (draining, over capacity, 107%) and
// ms-9, which the fleet does not track.
func testFleet(polledAgo time.Duration) fleet.Snapshot {
	snap := fleet.Snapshot{Servers: []fleet.Server{
		mediaServer("ms-1", fleet.StateRegistered), mediaServer("ms-2", fleet.StateRegistered),
		mediaServer("ms-3", fleet.StateRunning),
	}}
	if polledAgo >= 0 {
		snap.Gateway = &fleet.GatewayView{PollMs: pageNow.Add(-polledAgo).UnixMilli(), IntervalMs: 15000,
			MediaServers: []fleet.MediaServerFacts{
				{ID: "ms-1", UsedCapacity: ptr(0.42), Draining: ptr(false), OverCapacity: ptr(false)},
				{ID: "ms-2", UsedCapacity: ptr(1.07), Draining: ptr(true), OverCapacity: ptr(true)},
				{ID: "ms-9"},
			},
			Applications: []fleet.ApplicationFacts{
				{ID: "app-b", Channels: ptr(int64(3)), Connections: ptr(int64(12))},
				{ID: "app-gw-only", Clients: ptr(int64(2))},
			}}
	}
	return snap
}

// statusFor builds the page model of a state.
func statusFor(snap fleet.Snapshot, polls GatewayPolls, apps ApplicationReader, log *DeliveryLog) *statusData {
	if log == nil {
		log = NewDeliveryLog()
	}
	return buildStatus(StatusPageConfig{Fleet: fixedFleet{snap}, Gateway: polls, Applications: apps, Deliveries: log,
		Ready: func() bool { return true }, Now: func() time.Time { return pageNow }, Logger: slog.New(slog.DiscardHandler)})
}

// gatewayOf lists what the page shows beside each server, by id.
func gatewayOf(d *statusData) map[string]*serverGateway {
	out := map[string]*serverGateway{}
	for _, g := range d.Groups {
		for _, r := range g.Rows {
			out[r.ID] = r.Gateway
		}
	}
	return out
}

// TestStatusGateway: what the page says of the Gateway's REST API for
// each state of the API and of this exporter's polls.
func TestStatusGateway(t *testing.T) {
	const never = -1
	listed := map[string]*serverGateway{
		"ms-1": {Listed: true, Capacity: "42 %"},
		"ms-2": {Listed: true, Capacity: "107 %", Full: true, Draining: true, Over: true},
		"ms-3": {},
	}
	counts := gatewayLine{On: true, Polled: true, Interval: 15 * time.Second, Listed: 3, Draining: 1, Over: 1, Untracked: 1}
	with := func(g gatewayLine, change func(*gatewayLine)) gatewayLine { change(&g); return g }
	for _, tc := range []struct {
		name      string
		polledAgo time.Duration // never: no successful poll
		polls     GatewayPolls
		want      gatewayLine
		servers   map[string]*serverGateway
	}{
		{"off", 5 * time.Second, nil, gatewayLine{}, map[string]*serverGateway{"ms-1": nil, "ms-2": nil, "ms-3": nil}},
		{"waiting for the first poll", never, lastFailure{}, gatewayLine{On: true},
			map[string]*serverGateway{"ms-1": nil, "ms-2": nil, "ms-3": nil}},
		{"up", 5 * time.Second, lastFailure{},
			with(counts, func(g *gatewayLine) { g.Up, g.LastPoll = true, pageNow.Add(-5*time.Second) }), listed},
		{"failing after a success", 20 * time.Second, lastFailure{pageNow.Add(-4 * time.Second), "mediaservers: HTTP 401"},
			with(counts, func(g *gatewayLine) {
				g.LastPoll, g.Failed, g.FailingNow, g.FailedAt, g.Reason = pageNow.Add(-20*time.Second), true, true, pageNow.Add(-4*time.Second), "mediaservers: HTTP 401"
			}), listed},
		{"failing from the start", never, lastFailure{pageNow.Add(-time.Second), "mediaservers: no answer: connection refused"},
			gatewayLine{On: true, Failed: true, FailingNow: true, FailedAt: pageNow.Add(-time.Second), Reason: "mediaservers: no answer: connection refused"},
			map[string]*serverGateway{"ms-1": nil, "ms-2": nil, "ms-3": nil}},
		{"up again after a failure", 5 * time.Second, lastFailure{pageNow.Add(-time.Hour), "mediaservers: HTTP 503"},
			with(counts, func(g *gatewayLine) {
				g.Up, g.LastPoll, g.Failed, g.FailedAt, g.Reason = true, pageNow.Add(-5*time.Second), true, pageNow.Add(-time.Hour), "mediaservers: HTTP 503"
			}), listed},
		{"no success for three intervals, no failure here", time.Minute, lastFailure{},
			with(counts, func(g *gatewayLine) { g.LastPoll = pageNow.Add(-time.Minute) }), listed},
		{"the reason made safe", 20 * time.Second,
			lastFailure{pageNow.Add(-time.Second), `answers: see https://gw/x?key=k1 and /etc/liveswitch/key.txt`},
			with(counts, func(g *gatewayLine) {
				g.LastPoll, g.Failed, g.FailingNow, g.FailedAt, g.Reason = pageNow.Add(-20*time.Second), true, true, pageNow.Add(-time.Second), "answers: see https://gw/x and …/key.txt"
			}), listed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := statusFor(testFleet(tc.polledAgo), tc.polls, nil, nil)
			if !reflect.DeepEqual(d.Gateway, tc.want) {
				t.Errorf("gateway line\n got %+v\nwant %+v", d.Gateway, tc.want)
			}
			if got := gatewayOf(d); !reflect.DeepEqual(got, tc.servers) {
				t.Errorf("servers: %s, want %s", show(got), show(tc.servers))
			}
			if d.Apps.GatewayOn != tc.want.On {
				t.Errorf("the Gateway's application counts shown: %v, want %v", d.Apps.GatewayOn, tc.want.On)
			}
		})
	}
}

func show(m map[string]*serverGateway) string {
	var parts []string
	for _, id := range []string{"ms-1", "ms-2", "ms-3"} {
		parts = append(parts, fmt.Sprintf("%s:%+v", id, m[id]))
	}
	return strings.Join(parts, " ")
}

func recentOf(id string, events, connected, failed uint64, setups map[int]uint64) applications.Recent {
	r := applications.Recent{ID: id, Events: events, Connected: connected, Failed: failed}
	for b, n := range setups {
		r.Setup[b] = n
	}
	return r
}

// TestStatusApplications: the applications as the page lists them, from
// the webhooks' recent counts and the Gateway's.
func TestStatusApplications(t *testing.T) {
	apps := fixedApps{
		recentOf("app-a", 40, 19, 1, map[int]uint64{5: 20}),   // 20 setups in (1, 1.5]
		recentOf("app-b", 300, 90, 10, map[int]uint64{2: 10}), // 10 in (0.25, 0.5]
		recentOf("app-slow", 10, 3, 0, map[int]uint64{11: 3}), // 3 beyond 30 s
		recentOf("app-quiet", 0, 0, 0, nil),
	}
	gw := func(c ...string) *gatewayCounts {
		return &gatewayCounts{Channels: c[0], Clients: c[1], Connections: c[2], Users: c[3], Devices: c[4]}
	}
	for _, tc := range []struct {
		name  string
		apps  ApplicationReader
		polls GatewayPolls
		want  []appRow
	}{
		{"webhooks only", apps, nil, []appRow{
			{ID: "app-b", Counted: true, Events: 300, Ratio: "10 %", Failing: true, Attempts: 100, P50: "0.38 s", P95: "0.49 s"},
			{ID: "app-a", Counted: true, Events: 40, Ratio: "5.0 %", Attempts: 20, P50: "1.2 s", P95: "1.5 s"},
			{ID: "app-slow", Counted: true, Events: 10, Ratio: "0 %", Attempts: 3, P50: "> 30 s", P95: "> 30 s"},
			{ID: "app-quiet", Counted: true},
		}},
		{"with the Gateway's counts", apps, lastFailure{}, []appRow{
			{ID: "app-b", Counted: true, Events: 300, Ratio: "10 %", Failing: true, Attempts: 100, P50: "0.38 s", P95: "0.49 s",
				Gateway: gw("3", "", "12", "", "")},
			{ID: "app-a", Counted: true, Events: 40, Ratio: "5.0 %", Attempts: 20, P50: "1.2 s", P95: "1.5 s"},
			{ID: "app-slow", Counted: true, Events: 10, Ratio: "0 %", Attempts: 3, P50: "> 30 s", P95: "> 30 s"},
			{ID: "app-gw-only", Gateway: gw("", "2", "", "", "")},
			{ID: "app-quiet", Counted: true},
		}},
		{"not counted, Gateway's only", nil, lastFailure{}, []appRow{
			{ID: "app-b", Gateway: gw("3", "", "12", "", "")},
			{ID: "app-gw-only", Gateway: gw("", "2", "", "", "")},
		}},
		{"nothing", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := statusFor(testFleet(5*time.Second), tc.polls, tc.apps, nil).Apps
			if !reflect.DeepEqual(s.Rows, tc.want) {
				t.Errorf("rows\n got %+v\nwant %+v", s.Rows, tc.want)
			}
			if s.Counted != (tc.apps != nil) || s.Shown != len(tc.want) || s.Total != len(tc.want) || s.Window != "5 minutes" {
				t.Errorf("counted %v, %d of %d shown, window %q", s.Counted, s.Shown, s.Total, s.Window)
			}
		})
	}
}

// TestStatusApplicationsBounded: the page lists the busiest maxPageApps
// of many applications, and says so.
func TestStatusApplicationsBounded(t *testing.T) {
	var apps fixedApps
	for i := range 3 * maxPageApps {
		apps = append(apps, recentOf(fmt.Sprintf("app-%04d", i), uint64(i), 0, 0, nil))
	}
	s := statusFor(testFleet(-1), nil, apps, nil).Apps
	if s.Shown != maxPageApps || s.Total != 3*maxPageApps || len(s.Rows) != maxPageApps {
		t.Fatalf("%d rows, %d of %d shown", len(s.Rows), s.Shown, s.Total)
	}
	if first, last := s.Rows[0].ID, s.Rows[len(s.Rows)-1].ID; first != "app-0299" || last != "app-0200" {
		t.Errorf("rows from %s to %s; want the busiest, app-0299 to app-0200", first, last)
	}
}

// TestStatusDeliveries: the counts since the start by status and outcome,
// and the last deliveries of each class kept apart.
func TestStatusDeliveries(t *testing.T) {
	at := func(ago time.Duration) time.Time { return pageNow.Add(-ago) }
	for _, tc := range []struct {
		name       string
		deliveries []Delivery
		counts     string // status/outcome=count@age, in the page's order
		totals     [3]uint64
		recent     bool
		rejected   []string // reasons, newest first
		notApplied []string // outcomes, newest first
	}{
		{name: "none", counts: ""},
		{name: "each kind", deliveries: []Delivery{
			{Time: at(time.Hour), Status: 400, Outcome: "rejected", Reason: "missing \"timestamp\""},
			{Time: at(50 * time.Minute), Status: 204, Outcome: "applied"},
			{Time: at(40 * time.Minute), Status: 202, Accepted: true, Outcome: "applied=1 duplicate=2"},
			{Time: at(30 * time.Minute), Status: 202, Accepted: true, Outcome: "ignored=1 pending=1"},
			{Time: at(20 * time.Minute), Status: 503, Outcome: "retry", Reason: "not ready"},
			{Time: at(10 * time.Minute), Status: 204, Outcome: "applied"},
			{Time: at(time.Minute), Status: 401, Outcome: "rejected", Reason: "wrong token"},
		},
			counts: "204/applied=2@10m0s 202/duplicate=1@40m0s 202/ignored=1@30m0s 202/pending=1@30m0s " +
				"400/rejected=1@1h0m0s 401/rejected=1@1m0s 503/retry=1@20m0s",
			totals: [3]uint64{2, 2, 3}, recent: true,
			rejected: []string{"wrong token", "not ready", `missing "timestamp"`}, notApplied: []string{"ignored=1 pending=1", "applied=1 duplicate=2"}},
		{name: "an old rejection is not recent", deliveries: []Delivery{
			{Time: at(6 * time.Minute), Status: 413, Outcome: "rejected", Reason: "body exceeds 10 bytes"},
		}, counts: "413/rejected=1@6m0s", totals: [3]uint64{0, 0, 1}, rejected: []string{"body exceeds 10 bytes"}},
		{name: "an unknown outcome of a 202", deliveries: []Delivery{
			{Time: at(time.Second), Status: 202, Accepted: true, Outcome: "flapped=1"},
			{Time: at(time.Second), Status: 202, Accepted: true},
		}, counts: "202/other=2@1s", totals: [3]uint64{0, 2, 0}, notApplied: []string{"", "flapped=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := NewDeliveryLog()
			for _, d := range tc.deliveries {
				log.add(d)
			}
			s := statusFor(testFleet(-1), nil, nil, log).Webhooks
			var counts []string
			for _, c := range s.Counts {
				counts = append(counts, fmt.Sprintf("%d/%s=%d@%s", c.Status, c.Outcome, c.Count, c.Age))
			}
			if got := strings.Join(counts, " "); got != tc.counts {
				t.Errorf("counts\n got %s\nwant %s", got, tc.counts)
			}
			if got := [3]uint64{s.Applied, s.NotApplied, s.Rejected}; got != tc.totals || s.RecentRejection != tc.recent {
				t.Errorf("totals %v (recent rejection %v), want %v (%v)", got, s.RecentRejection, tc.totals, tc.recent)
			}
			var rejected, notApplied []string
			for _, r := range s.Tables[0].Rows {
				rejected = append(rejected, r.Reason)
			}
			for _, r := range s.Tables[1].Rows {
				notApplied = append(notApplied, r.Outcome)
			}
			if s.Tables[0].Class != ClassRejected || s.Tables[1].Class != ClassNotApplied {
				t.Errorf("tables %v, %v; want the rejected first", s.Tables[0].Class, s.Tables[1].Class)
			}
			if !reflect.DeepEqual(rejected, tc.rejected) || !reflect.DeepEqual(notApplied, tc.notApplied) {
				t.Errorf("rejected %q, not applied %q; want %q, %q", rejected, notApplied, tc.rejected, tc.notApplied)
			}
		})
	}
}

func TestClientSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mediaservers: HTTP 503", "mediaservers: HTTP 503"},
		{"no answer: dial tcp 10.0.0.5:9090: connect: connection refused", "no answer: dial tcp 10.0.0.5:9090: connect: connection refused"},
		{"see https://gw.example/admin?apikey=s3cret&x=1 now", "see https://gw.example/admin now"},
		{`(problem: "https://gw/a#frag")`, `(problem: "https://gw/a")`},
		{"GET /admin/api/v1/mediaservers?key=s3cret", "GET …/mediaservers"},
		{"redirect to https://user:pass@gw.example/x", "redirect to https://gw.example/x"},
		{"open /var/lib/liveswitch_exporter/pebble/000012.sst: permission denied", "open …/000012.sst: permission denied"},
		{`read "/etc/ls/key": no such file`, `read "…/key": no such file`},
		{`C:\ProgramData\LiveSwitch\key.txt missing`, `…\key.txt missing`},
		{"path=/data/store/", "path=…/store"},
		{"the /metrics endpoint", "the /metrics endpoint"},
		{"is it up? yes", "is it up? yes"},
		{"line\nbreak\x00nul", "line break nul"},
		{strings.Repeat("é", 200), strings.Repeat("é", maxReasonBytes/2) + "…"},
	} {
		if got := clientSafe(tc.in); got != tc.want {
			t.Errorf("clientSafe(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestStatusPage serves the page on a real listener, for a fleet fed
// through the webhook: what needs attention first, the Gateway said to
// be off, the deliveries of each kind, no JavaScript.
func TestStatusPage(t *testing.T) {
	now := time.UnixMilli(t0).Add(90 * time.Minute)
	srv := newTestServerWith(t, func(c *Config) { c.Now = func() time.Time { return now } })
	feedAPIFleet(t, srv)
	srv.do(t, http.MethodPost, WebhookPath, `{"type":"mediaserver.registered"}`)
	srv.do(t, http.MethodPost, WebhookPath, serverEvent(t0, "mediaserver.registered", `{"id":"ms-1"}`)) // a duplicate: 202
	code, page := srv.do(t, http.MethodGet, "/", "")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	first := func(ids ...string) string { // the id among ids that comes first in the page
		best, at := "", len(page)
		for _, id := range ids {
			if i := strings.Index(page, `data-id="`+id+`"`); i >= 0 && i < at {
				best, at = id, i
			}
		}
		return best
	}
	for _, want := range []string{
		`<tr class="server attention" data-origin="mediaserver" data-id="ms-2" data-state="running">`,
		`<tr class="server attention" data-origin="mediaserver" data-id="ms-3" data-state="unregistered">`,
		`<tr class="server" data-origin="mediaserver" data-id="ms-1" data-state="registered">`,
		`<div class="tile bad" id="attention-count">`, `<div class="value">2</div>`,
		`1h 30m`, // time in state
		`title="since 2026-01-01 00:00:00.000 UTC"`,
		`<code>--liveswitch.api-url</code> is not set`,
		`Application webhooks are not counted by this exporter.`,
		`<tr class="count applied" data-status="204" data-outcome="applied">`,
		`<tr class="count not-applied" data-status="202" data-outcome="duplicate">`,
		`<tr class="count rejected" data-status="400" data-outcome="rejected">`,
		`<tr class="delivery rejected">`, `missing &#34;timestamp&#34;`,
		`<tr class="delivery not-applied">`, `duplicate=1`,
		`href="/metrics"`, `href="/api/v1/servers"`, `href="/api/v1/events"`, `href="/-/healthy"`, `href="/-/ready"`,
		`version dev`,
		`<meta name="viewport"`, `http-equiv="refresh"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if got := first("ms-1", "ms-2", "ms-3", "gw-1", "sip-1"); got != "ms-2" && got != "ms-3" {
		t.Errorf("first server shown is %s, want a media server that is not registered", got)
	}
	if strings.Contains(page, "<script") || regexp.MustCompile(`\son[a-z]+=|javascript:`).MatchString(page) {
		t.Error("the page needs no JavaScript")
	}
	if code, _ := srv.do(t, http.MethodGet, "/nothing-here", ""); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

// TestRejectionSurvivesAcceptedFlood: after a rejection, two minutes of
// accepted deliveries at 20 a second (by the page's clock) through the
// real listener leave it on the page and in the API.
func TestRejectionSurvivesAcceptedFlood(t *testing.T) {
	clock := time.UnixMilli(t0).Add(time.Hour)
	srv := newTestServerWith(t, func(c *Config) { c.Now = func() time.Time { return clock } })
	if code, _ := srv.do(t, http.MethodPost, WebhookPath, `{"type":"mediaserver.registered","mediaserver":{"id":"lost"}}`); code != http.StatusBadRequest {
		t.Fatalf("the bad body answered %d", code)
	}
	const perSecond, seconds = 20, 120
	for i := range perSecond * seconds {
		clock = clock.Add(time.Second / perSecond)
		action := []string{"registered", "unregistered"}[i%2]
		if code, answer := srv.do(t, http.MethodPost, WebhookPath, serverEvent(t0+int64(i), "mediaserver."+action, `{"id":"ms-flood"}`)); code != http.StatusNoContent {
			t.Fatalf("accepted delivery %d: %d %s", i, code, answer)
		}
	}
	_, page := srv.do(t, http.MethodGet, "/", "")
	if !strings.Contains(page, `missing &#34;timestamp&#34;`) {
		t.Fatal("the rejection left the page")
	}
	rejected := page[strings.Index(page, `id="rejected"`):]
	if !strings.Contains(rejected[:strings.Index(rejected, "</table>")], `missing &#34;timestamp&#34;`) || !strings.Contains(rejected, "2m 0s ago") {
		t.Errorf("the rejection is not in the table of rejections, 2 minutes old:\n%s", rejected)
	}
	if !strings.Contains(page, `data-status="204" data-outcome="applied">`) || !strings.Contains(page, fmt.Sprintf(`<td class="num">%d</td>`, perSecond*seconds)) {
		t.Error("the page does not count every applied delivery")
	}
	var out deliveriesJSON
	srv.getJSON(t, "/api/v1/events", &out)
	if last := out.Deliveries[len(out.Deliveries)-1]; last.Status != http.StatusBadRequest {
		t.Errorf("the API's oldest delivery is %+v, want the rejection", last)
	}
}
