package gateway

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// skippedLine is the log line of an item a poll skipped.
const skippedLine = "An item of the Gateway's answer was skipped"

// invalidItems returns liveswitch_api_invalid_items_total by "endpoint/reason",
// leaving out zeros.
func invalidItems(expo string) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`(?m)^liveswitch_api_invalid_items_total\{endpoint="([^"]+)",reason="([^"]+)"\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(expo, -1) {
		if m[3] != "0" {
			out[m[1]+"/"+m[2]] = m[3]
		}
	}
	return out
}

// TestBadItemsAreSkipped: one bad item in an answer is skipped (or, for a
// media server with a good id, the bad fact alone), counted by
// endpoint and reason and logged with its reason; every valid item is kept,
// the fleet is built from them, and the poll counts as a success.
func TestBadItemsAreSkipped(t *testing.T) {
	const good = `{"id":"ms-good","region":"eu","usedCapacity":0.5,"coreCount":8,"draining":false}`
	list := func(bad string) string { return `[` + good + `,` + bad + `]` }
	// Beside a bad media server, the good one is kept; beside a bad
	// application, the fixture's media servers.
	keptServer := []string{`liveswitch_server_state{deployment_id="",id="ms-good",origin="mediaserver",region="eu",state="registered"} 1`,
		`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-good",origin="mediaserver",region="eu"} 0.5`}
	keptFixture := []string{`liveswitch_server_state{deployment_id="prod",id="ms-1",origin="mediaserver",region="us-east",state="registered"} 1`}
	type item struct {
		name   string
		answer func(*fixtureAPI) http.HandlerFunc
		counts string // endpoint/reason; empty: nothing skipped
		detail string // in the log line
		want   []string
		absent []string
	}
	// The media servers whose item is kept, without the fact that was
	// wrong: the Gateway does list them.
	keptWithoutFact := map[string]bool{"version a number": true, "cores as a fraction": true, "draining a string": true,
		"capacity a string": true, "number beyond float64": true, "region too long": true, "cores out of range": true,
		"region holding the key": true}
	listedBad := `liveswitch_server_gateway_listed{deployment_id="",id="ms-bad",origin="mediaserver",region=""} 1`
	mediaServers := []item{
		{"version a number", servers(list(`{"id":"ms-bad","version":1.24}`)), "mediaservers/wrong_type", `\"version\" is a JSON number, want a string`, nil, nil},
		{"cores as a fraction", servers(list(`{"id":"ms-bad","coreCount":8.5}`)), "mediaservers/wrong_type", `\"coreCount\" is 8.5, want a whole number`, nil, nil},
		{"draining a string", servers(list(`{"id":"ms-bad","draining":"yes"}`)), "mediaservers/wrong_type", `\"draining\" is a JSON string, want true or false`, nil, nil},
		{"capacity a string", servers(list(`{"id":"ms-bad","usedCapacity":"high"}`)), "mediaservers/wrong_type", `\"usedCapacity\" is a JSON string, want a number`, nil, nil},
		{"id a number", servers(list(`{"id":42}`)), "mediaservers/wrong_type", `\"id\" is a JSON number, want a string`, nil, nil},
		{"number beyond float64", servers(list(`{"id":"ms-bad","usedCapacity":1e999}`)), "mediaservers/wrong_type", `\"usedCapacity\" is 1e999, want a number`, nil, nil},
		{"no id", servers(list(`{"region":"eu"}`)), "mediaservers/missing_id", `missing \"id\"`, nil, nil},
		{"empty id", servers(list(`{"id":""}`)), "mediaservers/missing_id", `missing \"id\"`, nil, nil},
		{"null element", servers(list(`null`)), "mediaservers/not_an_object", "is a JSON null, want an object", nil, nil},
		{"number element", servers(list(`7`)), "mediaservers/not_an_object", "is a JSON number, want an object", nil, nil},
		{"id with a line break", servers(list(`{"id":"ms-bad\n# HELP injected"}`)), "mediaservers/invalid_value", `\"id\" contains control characters`, nil, nil},
		{"id with a NUL", servers(list(`{"id":"ms\u0000bad"}`)), "mediaservers/invalid_value", `\"id\" contains control characters`, nil, nil},
		{"id too long", servers(list(`{"id":"` + strings.Repeat("x", 300) + `"}`)), "mediaservers/invalid_value", `\"id\" is longer than 256 bytes`, nil, nil},
		{"region too long", servers(list(`{"id":"ms-bad","region":"` + strings.Repeat("r", 257) + `"}`)), "mediaservers/invalid_value", `\"region\" is longer than 256 bytes`, nil, nil},
		{"cores out of range", servers(list(`{"id":"ms-bad","coreCount":1e6}`)), "mediaservers/invalid_value", `\"coreCount\" is not from 0 to 65536`, nil, nil},
		{"id listed twice", servers(list(`{"id":"ms-good","usedCapacity":0.9}`)), "mediaservers/duplicate_id", "listed twice", nil, nil},
		{"cores 8.0", servers(list(`{"id":"ms-8","region":"eu","coreCount":8.0,"usedCapacity":0.25}`)), "", "", []string{
			`liveswitch_server_cores{deployment_id="",id="ms-8",origin="mediaserver",region="eu"} 8`,
			`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-8",origin="mediaserver",region="eu"} 0.25`,
		}, nil},
		{"capacity a percentage", servers(list(`{"id":"ms-pct","region":"eu","usedCapacity":85,"draining":true}`)),
			"mediaservers/used_capacity_out_of_range", `\"usedCapacity\" 85 is not a fraction from 0 to 2`, []string{
				`liveswitch_mediaserver_draining{deployment_id="",id="ms-pct",origin="mediaserver",region="eu"} 1`,
				`liveswitch_server_gateway_listed{deployment_id="",id="ms-pct",origin="mediaserver",region="eu"} 1`,
			}, []string{`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-pct"`}},
		{"capacity 101", servers(list(`{"id":"ms-pct","usedCapacity":101}`)), "mediaservers/used_capacity_out_of_range", "not a fraction", nil,
			[]string{`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-pct"`}},
		{"capacity negative", servers(list(`{"id":"ms-pct","usedCapacity":-0.5}`)), "mediaservers/used_capacity_out_of_range", "not a fraction", nil,
			[]string{`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-pct"`}},
		{"capacity 1e308", servers(list(`{"id":"ms-pct","usedCapacity":1e308}`)), "mediaservers/used_capacity_out_of_range", "not a fraction", nil,
			[]string{`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-pct"`}},
		{"id holding the key", servers(list(`{"id":"ms-` + testKey[2:10] + `"}`)), "mediaservers/holds_api_key", `\"id\" holds part of the API key`, nil,
			[]string{testKey[2:10]}},
		{"region holding the key", servers(list(`{"id":"ms-bad","region":"` + strings.ToUpper(testKey) + `"}`)), "mediaservers/holds_api_key",
			`\"region\" holds part of the API key`, nil, nil},
		{"capacity over 1 for a while", servers(list(`{"id":"ms-over","usedCapacity":1.5}`)), "", "", []string{
			`liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-over",origin="mediaserver",region=""} 1.5`,
		}, nil},
	}
	applications := []item{
		{"application id of the wrong type", answerOn("/v1.0/applications", 200, "application/json", `["app-meetings",7,{"id":"app-webinars"}]`),
			"applications/wrong_type", "is a JSON number, want an id or an object with an id", nil, nil},
		{"application id missing", answerOn("/v1.0/applications", 200, "application/json", `["app-meetings",{"name":"x"},{"id":"app-webinars"}]`),
			"applications/missing_id", `missing \"id\"`, nil, nil},
		{"application id with a control character", answerOn("/v1.0/applications", 200, "application/json", `["app-meetings","app\u0007",{"id":"app-webinars"}]`),
			"applications/invalid_value", `\"id\" contains control characters`, nil, nil},
		{"application id holding the key", answerOn("/v1.0/applications", 200, "application/json", `["app-meetings","app-`+testKey[:9]+`",{"id":"app-webinars"}]`),
			"applications/holds_api_key", `\"id\" holds part of the API key`, nil, []string{testKey[:9]}},
		{"application listed twice", answerOn("/v1.0/applications", 200, "application/json", `["app-meetings","app-meetings",{"id":"app-webinars"}]`),
			"applications/duplicate_id", "listed twice", nil, nil},
		{"negative channel count", application(`{"id":"app-meetings","channelCount":-3}`), "application/invalid_value", "a count is negative", nil,
			[]string{`liveswitch_application_channels{application_id="app-meetings"}`}},
		{"another application's answer", application(`{"id":"app-webinars","channelCount":3}`), "application/other_application",
			`the answer's \"id\" is not the application asked for`, nil, []string{`application_id="app-meetings"`}},
		{"count a string", application(`{"id":"app-meetings","clientCount":"many"}`), "application/wrong_type",
			`\"clientCount\" is a JSON string, want a whole number`, nil, []string{`application_id="app-meetings"`}},
		{"count 12.0", application(`{"id":"app-meetings","channelCount":12.0}`), "", "",
			[]string{`liveswitch_application_channels{application_id="app-meetings"} 12`}, nil},
		{"count 12.5", application(`{"id":"app-meetings","channelCount":12.5}`), "application/wrong_type",
			`\"channelCount\" is 12.5, want a whole number`, nil, []string{`application_id="app-meetings"`}},
	}
	for _, tc := range append(mediaServers, applications...) {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.api.answer(tc.answer(r.api))
			r.tick()
			expo, logs := r.exposition(t), r.logs.String()
			if !strings.Contains(expo, "liveswitch_api_up 1\n") {
				t.Fatalf("the poll failed:\n%s", logs)
			}
			// What is valid is kept, and makes the fleet at bootstrap.
			want := append([]string{`liveswitch_application_connections{application_id="app-webinars"} 302`}, tc.want...)
			if slices.ContainsFunc(applications, func(i item) bool { return i.name == tc.name }) {
				want = append(want, keptFixture...)
			} else {
				want = append(want, keptServer...)
			}
			absent := append(tc.absent, `application_id="app`+"\u0007")
			if keptWithoutFact[tc.name] {
				want = append(want, listedBad)
			} else {
				absent = append(absent, `id="ms-bad"`)
			}
			for _, w := range want {
				if !strings.Contains(expo, w+"\n") {
					t.Errorf("no %s in:\n%s", w, expo)
				}
			}
			for _, a := range absent {
				if strings.Contains(expo, a) {
					t.Errorf("%s is exported:\n%s", a, expo)
				}
			}
			counts := invalidItems(expo)
			if tc.counts == "" {
				if len(counts) != 0 || strings.Contains(logs, skippedLine) {
					t.Errorf("a valid item was skipped: %v\n%s", counts, logs)
				}
				return
			}
			if len(counts) != 1 || counts[tc.counts] != "1" {
				t.Errorf("skipped items %v, want %s 1", counts, tc.counts)
			}
			if n := strings.Count(logs, skippedLine); n != 1 || !strings.Contains(logs, tc.detail) {
				t.Errorf("%d lines, want one with %s:\n%s", n, tc.detail, logs)
			}
		})
	}
}

// TestApplicationGone: an application listed, then gone before its
// snapshot is read (404), has ended: it is left out, and the poll is no
// failure, nor the application an invalid item.
func TestApplicationGone(t *testing.T) {
	r := newRig(t, nil)
	r.tick()
	r.api.answer(answerOn("/applications/app-meetings", 404, "application/problem+json", `{"title":"Not Found","status":404}`)(r.api))
	r.tick()
	expo := r.exposition(t)
	if !strings.Contains(expo, "liveswitch_api_up 1\n") || strings.Contains(expo, `application_id="app-meetings"`) ||
		!strings.Contains(expo, `liveswitch_application_connections{application_id="app-webinars"} 302`) {
		t.Fatalf("after an application ended:\n%s\n%s", expo, r.logs.String())
	}
	if counts := invalidItems(expo); len(counts) != 0 || strings.Contains(r.logs.String(), "level=WARN") {
		t.Fatalf("an ended application counted or logged as a problem: %v\n%s", counts, r.logs.String())
	}
}

// manyApplications answers n application ids and a snapshot for each.
func manyApplications(n int) http.HandlerFunc {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"app-%04d"`, i)
	}
	list := "[" + strings.Join(ids, ",") + "]"
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/admin/api/v1.0/applications/")
		switch {
		case r.URL.Path == "/admin/api/v1.0/applications":
			_, _ = w.Write([]byte(list))
		case ok:
			_, _ = fmt.Fprintf(w, `{"id":%q,"channelCount":1}`, id)
		default:
			(&fixtureAPI{}).ServeHTTP(w, r)
		}
	}
}

// TestMoreApplicationsThanOnePollReads: of 1,001 applications the first
// 1,000 are read; that more exist is said once while it lasts, and by
// liveswitch_api_applications_unread.
func TestMoreApplicationsThanOnePollReads(t *testing.T) {
	r := newRig(t, nil)
	r.api.answer(manyApplications(maxApplications + 1))
	for range 2 {
		r.tick()
	}
	expo, logs := r.exposition(t), r.logs.String()
	if !strings.Contains(expo, "liveswitch_api_up 1\n") || !strings.Contains(expo, "liveswitch_api_applications_unread 1\n") {
		t.Fatalf("after 1001 applications:\n%s\n%s", expo, logs)
	}
	if n := strings.Count(expo, "liveswitch_application_channels{"); n != maxApplications ||
		!strings.Contains(expo, `liveswitch_application_channels{application_id="app-0999"} 1`) {
		t.Fatalf("%d applications exported, want the first %d", n, maxApplications)
	}
	if n := strings.Count(logs, "The Gateway lists more applications than one poll reads"); n != 1 || !strings.Contains(logs, "listed=1001 read=1000") {
		t.Fatalf("%d lines for two polls over the limit:\n%s", n, logs)
	}
	r.api.answer(manyApplications(maxApplications))
	r.tick()
	if expo := r.exposition(t); !strings.Contains(expo, "liveswitch_api_applications_unread 0\n") {
		t.Fatalf("under the limit again:\n%s", expo)
	}
	r.api.answer(manyApplications(maxApplications + 5))
	r.tick()
	if n := strings.Count(r.logs.String(), "The Gateway lists more applications than one poll reads"); n != 2 {
		t.Fatalf("%d lines after a second episode:\n%s", n, r.logs.String())
	}
}

// TestSkippedItemsLogOncePerEpisode: a bad item is counted at every poll
// that skips it and logged once while it stays bad; a new one is logged at
// once; one that comes back after a good poll is logged again; a flood of
// them writes a bounded number of lines.
func TestSkippedItemsLogOncePerEpisode(t *testing.T) {
	r := newRig(t, nil)
	const good = `{"id":"ms-good"}`
	bad := servers(`[` + good + `,{"id":"ms-bad","draining":"yes"}]`)
	worse := servers(`[` + good + `,{"id":"ms-bad","draining":"yes"},{"id":"ms-worse","coreCount":-1}]`)
	for _, step := range []struct {
		answer func(*fixtureAPI) http.HandlerFunc
		lines  int // skipped lines so far
	}{
		{bad, 1}, {bad, 1}, {bad, 1}, {worse, 2}, {worse, 2}, {servers(`[` + good + `]`), 2}, {bad, 3},
	} {
		r.api.answer(step.answer(r.api))
		r.tick()
		if n := strings.Count(r.logs.String(), skippedLine); n != step.lines {
			t.Fatalf("%d lines, want %d:\n%s", n, step.lines, r.logs.String())
		}
	}
	if got := invalidItems(r.exposition(t)); got["mediaservers/wrong_type"] != "6" || got["mediaservers/invalid_value"] != "2" {
		t.Fatalf("counted %v", got)
	}
	flood := `[` + good + strings.Repeat(`,null`, 5000) + `]`
	r.api.answer(servers(flood)(r.api))
	r.tick()
	logs := r.logs.String()
	if n := strings.Count(logs, skippedLine); n > 3+maxItemLines || !strings.Contains(logs, "more_skipped=") {
		t.Fatalf("%d lines for 5000 bad items:\n%s", n, logs)
	}
	if got := invalidItems(r.exposition(t)); got["mediaservers/not_an_object"] != "5000" {
		t.Fatalf("counted %v", got)
	}
	if _, err := r.poller.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRandomAnswersKeepEveryValidItem is a seeded sequence of polls whose
// media server lists mix valid items with bad ones of every reason, and
// whole answers that cannot be read. A model says what each poll must
// keep: every item with a usable id (a fact of the wrong type, or a
// percentage for usedCapacity, drops that fact alone), nothing of a failed poll, and counts that grow by exactly what
// was skipped.
func TestRandomAnswersKeepEveryValidItem(t *testing.T) {
	type outcome struct {
		json, id string // id: the item kept, if any
		reason   string // counted, if any
		capacity bool   // kept with a capacity
	}
	kinds := []func(id, earlier string) outcome{
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + `","region":"eu","usedCapacity":0.25,"coreCount":8}`, id, "", true}
		},
		func(id, _ string) outcome {
			return outcome{`{"Id":"` + id + `","UsedCapacity":1.5,"CoreCount":8.0,"Draining":null}`, id, "", true}
		},
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + `","version":1.2}`, id, reasonWrongType, false}
		},
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + `","draining":"no"}`, id, reasonWrongType, false}
		},
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + `","coreCount":2.5}`, id, reasonWrongType, false}
		},
		func(string, string) outcome { return outcome{`{"region":"eu"}`, "", reasonMissingID, false} },
		func(string, string) outcome { return outcome{`null`, "", reasonNotObject, false} },
		func(id, _ string) outcome { return outcome{`{"id":"` + id + `\n"}`, "", reasonInvalidValue, false} },
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + `","usedCapacity":85}`, id, reasonUsedCapacity, false}
		},
		func(id, _ string) outcome {
			return outcome{`{"id":"` + id + testKey[1:8] + `"}`, "", reasonHoldsKey, false}
		},
		func(id, earlier string) outcome {
			if earlier == "" {
				return outcome{`{"id":"` + id + `"}`, id, "", false}
			}
			return outcome{`{"id":"` + earlier + `","usedCapacity":0.9}`, "", reasonDuplicateID, false}
		},
	}
	r := newRig(t, nil)
	rng := rand.New(rand.NewPCG(21, 9))
	counts := map[string]int{}
	var kept map[string]bool // by the last successful poll: id -> has a capacity
	rounds := 40
	if os.Getenv("LIVESWITCH_TEST_LONG") != "" {
		rounds = 1000
	}
	for round := range rounds {
		if rng.IntN(8) == 0 {
			r.api.answer(answerOn("/v1/mediaservers", 500, "text/html", "<html>down</html>")(r.api))
			r.tick()
			if expo := r.exposition(t); !strings.Contains(expo, "liveswitch_api_up 0\n") {
				t.Fatalf("round %d: a failed poll is up", round)
			}
		} else {
			var items []string
			want := map[string]bool{}
			var earlier []string
			for j := range rng.IntN(8) {
				e := ""
				if len(earlier) > 0 {
					e = earlier[rng.IntN(len(earlier))]
				}
				o := kinds[rng.IntN(len(kinds))](fmt.Sprintf("ms-%d", j), e) // ids come back: the fleet stays small
				items = append(items, o.json)
				if o.reason != "" {
					counts[endpointMediaServers+"/"+o.reason]++
				}
				if o.id != "" {
					want[o.id] = o.capacity
					earlier = append(earlier, o.id)
				}
			}
			r.api.answer(servers("[" + strings.Join(items, ",") + "]")(r.api))
			r.tick()
			kept = want
		}
		got := map[string]bool{}
		if view := r.fleet.Snapshot().Gateway; view != nil {
			for _, m := range view.MediaServers {
				got[m.ID] = m.UsedCapacity != nil
			}
		}
		if !maps.Equal(got, kept) && len(got)+len(kept) > 0 {
			t.Fatalf("round %d: kept %v, want %v", round, got, kept)
		}
		gotCounts := invalidItems(r.exposition(t))
		if len(gotCounts) != len(counts) {
			t.Fatalf("round %d: counted %v, want %v", round, gotCounts, counts)
		}
		for k, n := range counts {
			if gotCounts[k] != strconv.Itoa(n) {
				t.Fatalf("round %d: counted %v, want %v", round, gotCounts, counts)
			}
		}
	}
}
