package applications

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// testNow is the exporter's clock in the tests: after every event.
var testNow = t0.Add(time.Minute)

func newTestTracker(t testing.TB, maxApps, maxPending int) (*Tracker, *time.Time) {
	t.Helper()
	return newTestTrackerWith(t, Options{MaxApplications: maxApps, MaxPending: maxPending})
}

// newTestTrackerWith returns a Tracker of opts on a clock the test moves,
// at testNow.
func newTestTrackerWith(t testing.TB, opts Options) (*Tracker, *time.Time) {
	t.Helper()
	now := testNow
	if opts.Decode == (event.DecodeOptions{}) {
		opts.Decode = event.DefaultDecodeOptions
	}
	opts.Now = func() time.Time { return now }
	return New(opts), &now
}

// appEvent renders one application event; ms is after t0.
func appEvent(ms int64, typ, app, conn, connType string) string {
	object := fmt.Sprintf(`{"applicationId":%q,"id":"obj"}`, app)
	key := strings.Split(typ, ".")[0]
	if key == "connection" {
		object = fmt.Sprintf(`{"applicationId":%q,"id":%q,"type":%q,"channelId":"ch","clientId":"cl"}`, app, conn, connType)
	}
	return fmt.Sprintf(`{"timestamp":%d,"origin":%q,"type":%q,%q:%s}`, t0.UnixMilli()+ms, key, typ, key, object)
}

func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// ev is an application event with every id a test may want; ms is after
// t0, err the raw JSON of the connection's error ("" for none).
type ev struct {
	ms                                          int64
	typ, app, conn, ctype, channel, client, err string
}

func (e ev) json() string {
	objects := map[string]string{}
	if e.conn != "" || strings.HasPrefix(e.typ, "connection.") {
		o := fmt.Sprintf(`{"applicationId":%q,"id":%q,"type":%q`, e.app, e.conn, e.ctype)
		if e.err != "" {
			o += `,"error":` + e.err
		}
		objects["connection"] = o + "}"
	}
	if e.channel != "" {
		objects["channel"] = fmt.Sprintf(`{"applicationId":%q,"id":%q}`, e.app, e.channel)
	}
	if e.client != "" {
		objects["client"] = fmt.Sprintf(`{"applicationId":%q,"id":%q}`, e.app, e.client)
	}
	out := fmt.Sprintf(`{"timestamp":%d,"type":%q`, t0.UnixMilli()+e.ms, e.typ)
	for _, k := range []string{"connection", "channel", "client"} {
		if o, ok := objects[k]; ok {
			out += fmt.Sprintf(`,%q:%s`, k, o)
		}
	}
	return out + "}"
}

func mustIngest(t testing.TB, tr *Tracker, body string) Result {
	t.Helper()
	res, err := tr.Ingest(context.Background(), []byte(body), nil)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return res
}

// TestTrackerGolden feeds a small life of two applications and compares
// every series with testdata/metrics.golden.
func TestTrackerGolden(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	for _, body := range []string{
		ev{ms: 0, typ: "channel.activated", app: "app-a", channel: "room"}.json(),
		ev{ms: 10, typ: "client.registered", app: "app-a", client: "alice"}.json(),
		ev{ms: 20, typ: "channel.client.joined", app: "app-a", channel: "room", client: "alice"}.json(),
		ev{ms: 30, typ: "client.registered", app: "app-a", client: "bob"}.json(),
		ev{ms: 40, typ: "channel.client.joined", app: "app-a", channel: "room", client: "bob"}.json(),
		batch(
			appEvent(100, "connection.initializing", "app-a", "c1", "sfu"),
			appEvent(150, "connection.connecting", "app-a", "c1", "sfu"),
			appEvent(1300, "connection.connected", "app-a", "c1", "sfu"), // 1.2 s
			appEvent(200, "connection.initializing", "app-a", "c2", "peer"),
		),
		appEvent(2700, "connection.connected", "app-a", "c2", "peer"), // 2.5 s
		appEvent(300, "connection.initializing", "app-a", "c3", "MCU"),
		appEvent(900, "connection.failing", "app-a", "c3", "MCU"),
		ev{ms: 1000, typ: "connection.failed", app: "app-a", conn: "c3", ctype: "MCU", err: `"DTLS handshake failed"`}.json(), // in setup
		appEvent(1000, "connection.failed", "app-b", "x", "carrier-pigeon"),                                                   // never seen
		ev{ms: 1000, typ: "connection.failed", app: "app-b", conn: "y", err: `{"code":"Timeout"}`}.json(),
		appEvent(5000, "connection.stats", "app-a", "c1", "sfu"),
		appEvent(6000, "connection.closed", "app-a", "c1", "sfu"),                                                                                   // up 4.7 s
		ev{ms: 42700, typ: "connection.failed", app: "app-a", conn: "c2", ctype: "peer", err: `{"code":"IceFailed","message":"ICE failed"}`}.json(), // up 40 s
		ev{ms: 50000, typ: "channel.client.left", app: "app-a", channel: "room", client: "bob"}.json(),
		ev{ms: 50010, typ: "client.unregistered", app: "app-a", client: "bob"}.json(),
		ev{ms: 60000, typ: "channel.deactivated", app: "app-a", channel: "room"}.json(), // 60 s, 2 at most
		ev{ms: 61000, typ: "channel.activated", app: "app-a", channel: "hall"}.json(),
		ev{ms: 61010, typ: "channel.client.joined", app: "app-a", channel: "hall", client: "alice"}.json(),
		appEvent(400, "connection.initializing", "app-b", "z", "sfu"), // still pending
		appEvent(400, "connection.initializing", "app-b", "z", "sfu"), // a retry: counted once
	} {
		mustIngest(t, tr, body)
	}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		writeExposition(t, tr, golden)
	}
	want, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(tr, want); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(tr); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}

func TestTrackerOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // fleet.Result.String()
	}{
		{"documented kinds", batch(appEvent(0, "client.registered", "a", "", ""), appEvent(1, "client.stats", "a", "", "")), "applied=2"},
		{"an unknown kind of a known origin", appEvent(0, "connection.exploded", "a", "c", "sfu"), "ignored=1"},
		{"an event that names no application", `{"timestamp":1700000000000,"type":"client.left"}`, "ignored=1"},
		{"one of each", batch(appEvent(0, "channel.activated", "a", "", ""), appEvent(0, "channel.exploded", "a", "", "")), "applied=1 ignored=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, 10, 10)
			if got := mustIngest(t, tr, tc.body).String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			// Events taken count in the application families, not in the
			// fleet's outcomes; the others do, and their arrival shows.
			got := tr.Outcomes().Stats()
			if got.Outcomes[fleet.OutcomeApplied] != 0 || got.Outcomes[fleet.OutcomeIgnored] != uint64(strings.Count(tc.want, "ignored")) ||
				got.LastReceivedMs == 0 {
				t.Fatalf("outcome counter %+v, want the ignored event only counted and the arrival noted", got)
			}
		})
	}
}

// TestTrackerRefusesBeyondMaxApplications: past the cap, a new
// application's events are refused, the known ones' still counted.
func TestTrackerRefusesBeyondMaxApplications(t *testing.T) {
	tr, _ := newTestTracker(t, 2, 10)
	mustIngest(t, tr, batch(appEvent(0, "channel.activated", "a", "", ""), appEvent(0, "channel.activated", "b", "", "")))
	res := mustIngest(t, tr, batch(
		appEvent(1, "channel.activated", "c", "", ""),
		appEvent(1, "connection.initializing", "c", "c1", "sfu"),
		appEvent(1, "channel.deactivated", "a", "", "")))
	if want := "applied=1 refused=2; 2 beyond --application.max (2) until an application is idle for --application.idle-after (0s)"; res.String() != want {
		t.Fatalf("got %q, want %q", res, want)
	}
	if n := testutil.ToFloat64(tr.metrics.events.WithLabelValues("a", "channel.deactivated")); n != 1 {
		t.Fatalf("a known application's event not counted: %v", n)
	}
	if strings.Contains(exposition(t, tr), `application_id="c"`) || entries(t, tr)[callstate.TableConnections] != 0 {
		t.Fatal("the refused application has series or pending connections")
	}
	if got := tr.Outcomes().Stats().Outcomes[fleet.OutcomeRefused]; got != 2 {
		t.Fatalf("%d refused counted, want 2", got)
	}
}

func TestTrackerSetupTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bodies []string
		count  uint64
		sum    float64
	}{
		{"in order", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(750, "connection.connected", "a", "c", "sfu")}, 1, 0.75},
		{"one batch", []string{batch(appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(2000, "connection.connected", "a", "c", "sfu"))}, 1, 2},
		{"connected delivered first", []string{appEvent(750, "connection.connected", "a", "c", "sfu"), appEvent(0, "connection.initializing", "a", "c", "sfu")}, 0, 0},
		{"connected stamped before initializing", []string{appEvent(750, "connection.initializing", "a", "c", "sfu"), appEvent(0, "connection.connected", "a", "c", "sfu")}, 0, 0},
		{"a retried connected is observed once", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "a", "c", "sfu"), appEvent(500, "connection.connected", "a", "c", "sfu")}, 1, 0.5},
		{"failed ends the wait", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"), appEvent(100, "connection.failed", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "a", "c", "sfu")}, 0, 0},
		{"another application's connection of the same id", []string{appEvent(0, "connection.initializing", "a", "c", "sfu"),
			appEvent(500, "connection.connected", "b", "c", "sfu")}, 0, 0},
		{"no connection id", []string{appEvent(0, "connection.initializing", "a", "", "sfu"), appEvent(500, "connection.connected", "a", "", "sfu")}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, 10, 10)
			for _, b := range tc.bodies {
				mustIngest(t, tr, b)
			}
			count, sum := setupOf(t, tr, "a")
			if count != tc.count || sum != tc.sum {
				t.Fatalf("observed %d setups summing to %vs, want %d and %vs", count, sum, tc.count, tc.sum)
			}
		})
	}
}

// setupOf reads the setup histogram of app.
func setupOf(t *testing.T, tr *Tracker, app string) (uint64, float64) {
	t.Helper()
	families, err := gather(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "liveswitch_application_connection_setup_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == app {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

// TestTrackerVerify: verify sees the applications the events name, and
// when it refuses, nothing at all is counted.
func TestTrackerVerify(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	refusal := errors.New("bad signature")
	var seen []string
	body := batch(appEvent(0, "connection.initializing", "b", "c", "sfu"), appEvent(1, "channel.activated", "a", "", ""),
		`{"timestamp":1700000000000,"type":"client.left"}`, appEvent(2, "channel.activated", "b", "", ""))
	_, err := tr.Ingest(context.Background(), []byte(body), func(ids []string) error {
		seen = ids
		return refusal
	})
	if !errors.Is(err, refusal) || !slices.Equal(seen, []string{"b", "a", ""}) {
		t.Fatalf("got %v, verify saw %q", err, seen)
	}
	if got := tr.Outcomes().Stats(); got != (fleet.Stats{}) {
		t.Fatalf("a refused body was counted: %+v", got)
	}
	if text := exposition(t, tr); strings.Contains(text, "application_id") || entries(t, tr) != [callstate.NumTables]int64{} {
		t.Fatalf("a refused body left series or pending connections:\n%s", text)
	}
}

// TestTrackerLeavesServerBodiesAndCountsInvalidOnes: a server body is
// not the tracker's and counts nothing; a malformed application body is
// counted invalid, once per event it held.
func TestTrackerLeavesServerBodiesAndCountsInvalidOnes(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	server := `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`
	if _, err := tr.Ingest(context.Background(), []byte(server), func([]string) error { t.Fatal("verify called for a server body"); return nil }); !errors.Is(err, event.ErrNotApplications) {
		t.Fatalf("server body: %v", err)
	}
	var invalid *event.InvalidError
	if _, err := tr.Ingest(context.Background(), []byte(batch(appEvent(0, "client.left", "a", "", ""), server)), nil); !errors.As(err, &invalid) {
		t.Fatalf("mixed body: %v", err)
	}
	if got := tr.Outcomes().Stats().Outcomes; got[fleet.OutcomeInvalid] != 2 || got[fleet.OutcomeApplied] != 0 {
		t.Fatalf("outcomes %v, want 2 invalid only", got)
	}
}

// TestTrackerDropsExpiredAtScrape: a connection that never connects is
// dropped 5 minutes after it arrived, and the drop shows at the next
// scrape even when no event comes.
func TestTrackerDropsExpiredAtScrape(t *testing.T) {
	tr, now := newTestTracker(t, 10, 10)
	mustIngest(t, tr, appEvent(0, "connection.initializing", "a", "c", "sfu"))
	*now = now.Add(callstate.DefaultPendingTTL)
	text := exposition(t, tr)
	for _, want := range []string{
		`liveswitch_exporter_application_entries{table="connections"} 0`,
		`liveswitch_exporter_application_entries_dropped_total{reason="expired",table="connections"} 1`,
		`liveswitch_application_active_connections{application_id="a"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Fatalf("no %s in\n%s", want, text)
		}
	}
}

// entries reads the entries held per table.
func entries(t testing.TB, tr *Tracker) [callstate.NumTables]int64 {
	t.Helper()
	sizes, err := tr.state.Sizes(context.Background(), tr.opts.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sizes.Entries
}

// TestTrackerCountsOnce: a retried delivery, a replay of a captured body
// and a batch regrouping events already counted count once; the answer
// says duplicate=N, and liveswitch_exporter_events_total counts them as
// duplicates. Before the memory of events, connection.failed went 0 → 3.
func TestTrackerCountsOnce(t *testing.T) {
	tr, now := newTestTracker(t, 10, 10)
	failedBody := ev{ms: 100, typ: "connection.failed", app: "a", conn: "c", ctype: "sfu", err: `"ICE failed"`}.json()
	init := appEvent(0, "connection.initializing", "a", "c2", "sfu")
	up := appEvent(800, "connection.connected", "a", "c2", "sfu")
	for i, tc := range []struct {
		body string
		want string
	}{
		{failedBody, "applied=1"},
		{failedBody, "duplicate=1"},      // LiveSwitch retries
		{failedBody, "duplicate=1"},      // someone replays it
		{batch(init, up), "applied=2"},   // a batch
		{batch(up, init), "duplicate=2"}, // retried, regrouped and reordered
		{batch(init, failedBody, appEvent(900, "connection.closed", "a", "c2", "sfu")), "applied=1 duplicate=2"},
	} {
		*now = now.Add(time.Second) // retries come later
		if got := mustIngest(t, tr, tc.body).String(); got != tc.want {
			t.Fatalf("body %d: %s, want %s", i, got, tc.want)
		}
	}
	text := exposition(t, tr)
	for _, want := range []string{
		`liveswitch_application_events_total{application_id="a",event="connection.failed"} 1`,
		`liveswitch_application_connection_failures_by_cause_total{application_id="a",cause="ice"} 1`,
		`liveswitch_application_events_total{application_id="a",event="connection.initializing"} 1`,
		`liveswitch_application_connection_setup_seconds_count{application_id="a"} 1`,
		`liveswitch_application_connection_duration_seconds_count{application_id="a",connection_type="sfu"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	if got := tr.Outcomes().Stats().Outcomes[fleet.OutcomeDuplicate]; got != 6 {
		t.Errorf("%d duplicates counted in the outcomes, want 6", got)
	}
}

// TestTrackerRefusesOldAndFutureEvents: an event older than
// --application.max-event-age or further ahead than the skew is refused,
// alone (the others of its body count), with its reason in the answer and
// in liveswitch_exporter_application_events_refused_total.
func TestTrackerRefusesOldAndFutureEvents(t *testing.T) {
	tr, now := newTestTrackerWith(t, Options{MaxApplications: 10, MaxEventAge: time.Hour})
	*now = t0.Add(time.Hour + time.Minute) // t0 - 1 min is 2 h 1 min old; t0 is 1 h 1 min old
	nowMs := now.Sub(t0).Milliseconds()
	res := mustIngest(t, tr, batch(
		appEvent(nowMs-time.Hour.Milliseconds(), "channel.activated", "a", "", ""),                                           // exactly the limit: counted
		appEvent(nowMs-time.Hour.Milliseconds()-1, "channel.activated", "a", "", ""),                                         // a millisecond older
		appEvent(time.Date(2008, 10, 20, 0, 0, 0, 0, time.UTC).Sub(t0).Milliseconds(), "connection.failed", "a", "c", "sfu"), // stamped in 2008
		appEvent(nowMs+(5*time.Minute).Milliseconds(), "client.registered", "a", "", ""),                                     // the skew: counted
		appEvent(nowMs+(5*time.Minute).Milliseconds()+1, "client.registered", "b", "", ""),                                   // beyond
	))
	want := "applied=2 refused=3; 2 older than --application.max-event-age (1h0m0s), 1 further ahead than --webhook.max-future-skew (5m0s)"
	if res.String() != want {
		t.Fatalf("got %q\nwant %q", res, want)
	}
	text := exposition(t, tr)
	for _, want := range []string{
		`liveswitch_exporter_application_events_refused_total{reason="too_old"} 2`,
		`liveswitch_exporter_application_events_refused_total{reason="too_far_ahead"} 1`,
		`liveswitch_application_events_total{application_id="a",event="connection.failed"} 0`,
		`liveswitch_exporter_applications_tracked 1`, // "b" took no slot
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	if got := tr.Outcomes().Stats().Outcomes[fleet.OutcomeRefused]; got != 3 {
		t.Errorf("%d refused in the outcomes, want 3", got)
	}
}

// TestTrackerFreesIdleApplications: past --application.max, an
// application without an event for --application.idle-after gives up its
// slot and its series, unless the Gateway lists it; refusals name both
// flags. Before, every new application was refused until a restart.
func TestTrackerFreesIdleApplications(t *testing.T) {
	listed := []string{"busy-by-api"}
	tr, now := newTestTrackerWith(t, Options{MaxApplications: 2, IdleAfter: 24 * time.Hour,
		GatewayApplications: func() []string { return listed }})
	at := func() int64 { return now.Sub(t0).Milliseconds() }
	mustIngest(t, tr, appEvent(at(), "channel.activated", "quiet", "", ""))
	mustIngest(t, tr, appEvent(at(), "channel.activated", "busy-by-api", "", ""))
	*now = now.Add(23 * time.Hour)
	res := mustIngest(t, tr, appEvent(at(), "channel.activated", "new", "", ""))
	if !strings.Contains(res.String(), "refused=1; 1 beyond --application.max (2) until an application is idle for --application.idle-after (24h0m0s)") {
		t.Fatalf("a new application while none is idle: %s", res)
	}
	*now = now.Add(time.Hour) // "quiet" is idle; "busy-by-api" too, but listed
	if res := mustIngest(t, tr, appEvent(at(), "channel.activated", "new", "", "")); res.String() != "applied=1" {
		t.Fatalf("a new application once one is idle: %s", res)
	}
	text := exposition(t, tr)
	if strings.Contains(text, `application_id="quiet"`) || !strings.Contains(text, `application_id="busy-by-api"`) ||
		!strings.Contains(text, "liveswitch_exporter_applications_forgotten_total 1\n") {
		t.Fatalf("the idle application's series must go, the listed one's stay:\n%s", text)
	}
	// Scrapes forget idle applications too, when nothing new knocks.
	listed = nil
	*now = now.Add(24 * time.Hour)
	text = exposition(t, tr)
	if strings.Contains(text, `application_id=`) || !strings.Contains(text, "liveswitch_exporter_applications_tracked 0\n") {
		t.Fatalf("idle applications left after a day:\n%s", text)
	}
}

// failingState fails every call, as a Redis that does not answer.
type failingState struct{ callstate.State }

var errDown = errors.New("redis: connection refused")

func (failingState) Apply(context.Context, []callstate.Fact, time.Time, []callstate.Effect) (callstate.Drops, error) {
	return callstate.Drops{}, errDown
}
func (failingState) Sweep(context.Context, time.Time) (callstate.Drops, error) {
	return callstate.Drops{}, errDown
}
func (failingState) Levels(context.Context, []string) ([]callstate.Levels, error) {
	return nil, errDown
}
func (failingState) Sizes(context.Context, time.Time) (callstate.Sizes, error) {
	return callstate.Sizes{}, errDown
}

// TestTrackerStateFailure: when the State fails, the body is refused with
// a *StateError (the HTTP layer answers 503, LiveSwitch retries) and
// nothing of it is counted; a scrape leaves the levels out.
func TestTrackerStateFailure(t *testing.T) {
	tr, _ := newTestTrackerWith(t, Options{MaxApplications: 10, State: failingState{}})
	_, err := tr.Ingest(context.Background(), []byte(appEvent(0, "connection.failed", "a", "c", "sfu")), nil)
	var se *StateError
	if !errors.As(err, &se) || !errors.Is(err, errDown) {
		t.Fatalf("got %v, want a *StateError", err)
	}
	text := exposition(t, tr)
	if strings.Contains(text, `event="connection.failed"} 1`) || strings.Contains(text, "liveswitch_application_active_") ||
		!strings.Contains(text, "liveswitch_exporter_application_state_errors_total 1\n") {
		t.Fatalf("counted although the state failed:\n%s", text)
	}
}

// TestTrackerLevels: the live levels follow the entities' lives.
func TestTrackerLevels(t *testing.T) {
	tr, _ := newTestTracker(t, 10, 10)
	mustIngest(t, tr, batch(
		ev{ms: 0, typ: "channel.activated", app: "a", channel: "small"}.json(),
		ev{ms: 1, typ: "channel.activated", app: "a", channel: "big"}.json(),
		ev{ms: 2, typ: "client.registered", app: "a", client: "1"}.json(),
		ev{ms: 3, typ: "client.registered", app: "a", client: "2"}.json(),
		ev{ms: 4, typ: "client.registered", app: "a", client: "3"}.json(),
		ev{ms: 5, typ: "channel.client.joined", app: "a", channel: "big", client: "1"}.json(),
		ev{ms: 6, typ: "channel.client.joined", app: "a", channel: "big", client: "2"}.json(),
		ev{ms: 7, typ: "channel.client.joined", app: "a", channel: "big", client: "3"}.json(),
		ev{ms: 8, typ: "channel.client.joined", app: "a", channel: "small", client: "3"}.json(),
		ev{ms: 9, typ: "connection.initializing", app: "a", conn: "x"}.json(),
		ev{ms: 10, typ: "connection.connected", app: "a", conn: "y"}.json(),
		ev{ms: 11, typ: "channel.client.left", app: "a", channel: "big", client: "3"}.json(),
		ev{ms: 12, typ: "client.unregistered", app: "a", client: "3"}.json(),
		ev{ms: 13, typ: "connection.closed", app: "a", conn: "x"}.json(),
	))
	text := exposition(t, tr)
	for _, want := range []string{
		`liveswitch_application_active_channels{application_id="a"} 2`,
		`liveswitch_application_active_clients{application_id="a"} 2`,
		`liveswitch_application_active_connections{application_id="a"} 1`,
		`liveswitch_application_largest_channel_clients{application_id="a"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
}

// TestTrackerBoundsTheFutureWithoutSkew: with --webhook.max-future-skew=0
// (no limit for server events), application events are still refused
// beyond --application.max-event-age ahead, so that the memory of events
// stays bounded.
func TestTrackerBoundsTheFutureWithoutSkew(t *testing.T) {
	tr, now := newTestTrackerWith(t, Options{MaxApplications: 10, Decode: event.DecodeOptions{MaxEvents: 10}})
	ahead := now.Sub(t0).Milliseconds() + time.Hour.Milliseconds()
	res := mustIngest(t, tr, batch(appEvent(ahead, "client.registered", "a", "", ""), appEvent(ahead+1, "client.registered", "a", "", "")))
	if want := "applied=1 refused=1; 1 further ahead than --application.max-event-age (1h0m0s)"; res.String() != want {
		t.Fatalf("got %q, want %q", res, want)
	}
}
