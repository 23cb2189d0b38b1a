package exporter

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fleetLines keeps the fleet series of an exposition: what no rejected
// request may change.
func fleetLines(exposition string) string {
	var out []string
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "liveswitch_server") || strings.HasPrefix(line, "liveswitch_cores") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func hostileEvent(ts, typ, key, object string) string {
	return fmt.Sprintf(`{"timestamp":%s,"origin":%q,"type":%q,%q:%s}`, ts, strings.Split(typ, ".")[0], typ, key, object)
}

// hostileCase is a body TestHostileInputs posts and the status it must get.
type hostileCase struct {
	name, body, contentEncoding string
	code                        int
}

// TestHostileInputs posts hostile bodies to a fleet that already tracks
// servers: each gets its expected status and none changes the fleet.
func TestHostileInputs(t *testing.T) {
	srv := newTestServer(t, DefaultMaxBodyBytes)
	now := time.Now().UnixMilli()
	ts := fmt.Sprint(now)
	for _, body := range []string{
		serverEvent(now-10, "mediaserver.started", `{"id":"m1","region":"eu","deploymentId":"d","coreCount":8}`),
		serverEvent(now-5, "mediaserver.registered", `{"id":"m1","region":"eu","deploymentId":"d"}`),
		serverEvent(now-5, "gateway.started", `{"id":"g1","deploymentId":"d"}`),
	} {
		if code, reply := srv.do(t, "POST", WebhookPath, body); code != http.StatusNoContent {
			t.Fatalf("seeding: %d %s", code, reply)
		}
	}
	ok := func(object string) string { return hostileEvent(ts, "mediaserver.unregistered", "mediaserver", object) }
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("["), 10<<20)) // a decompression bomb
	zw.Close()
	batch := func(n int, ev string) string { return "[" + strings.TrimSuffix(strings.Repeat(ev+",", n), ",") + "]" }

	cases := []hostileCase{
		{"truncated JSON", ok(`{"id":"m1"}`)[:30], "", 400},
		{"truncated inside a string", `{"timestamp":1,"type":"mediaser`, "", 400},
		{"trailing garbage", ok(`{"id":"m1"}`) + "xyz", "", 400},
		{"two objects back to back", ok(`{"id":"m1"}`) + ok(`{"id":"m1"}`), "", 400},
		{"empty body", "", "", 400},
		{"whitespace only", " \n\t ", "", 400},
		{"JSON null", "null", "", 400},
		{"JSON number", "42", "", 400},
		{"JSON string", `"mediaserver.unregistered"`, "", 400},
		{"empty object", "{}", "", 400},
		{"timestamp not numeric", hostileEvent(`"soon"`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp boolean", hostileEvent(`true`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp null", hostileEvent(`null`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp array", hostileEvent(`[1]`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp object", hostileEvent(`{}`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp 1e400", hostileEvent(`1e400`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"timestamp beyond int64", hostileEvent(`99999999999999999999`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"negative timestamp", hostileEvent(`-1`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"zero timestamp", hostileEvent(`0`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"far-future timestamp", hostileEvent(`32503680000000`, "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"fractional timestamp", hostileEvent(ts+".5", "mediaserver.unregistered", "mediaserver", `{"id":"m1"}`), "", 400},
		{"type a number", `{"timestamp":` + ts + `,"type":5,"mediaserver":{"id":"m1"}}`, "", 400},
		{"type null", `{"timestamp":` + ts + `,"type":null,"mediaserver":{"id":"m1"}}`, "", 400},
		{"type empty", `{"timestamp":` + ts + `,"type":"","mediaserver":{"id":"m1"}}`, "", 400},
		{"type without action", `{"timestamp":` + ts + `,"type":"mediaserver","mediaserver":{"id":"m1"}}`, "", 400},
		{"type without origin", `{"timestamp":` + ts + `,"type":".unregistered","mediaserver":{"id":"m1"}}`, "", 400},
		{"origin a number", `{"timestamp":` + ts + `,"origin":7,"type":"mediaserver.unregistered","mediaserver":{"id":"m1"}}`, "", 400},
		{"origin disagrees with type", `{"timestamp":` + ts + `,"origin":"gateway","type":"mediaserver.unregistered","mediaserver":{"id":"m1"}}`, "", 400},
		{"object under another key", hostileEvent(ts, "mediaserver.unregistered", "gateway", `{"id":"m1"}`), "", 400},
		{"server object a string", ok(`"m1"`), "", 400},
		{"server object an array", ok(`["m1"]`), "", 400},
		{"server object null", ok(`null`), "", 400},
		{"id a number", ok(`{"id":1}`), "", 400},
		{"id null", ok(`{"id":null}`), "", 400},
		{"id empty", ok(`{"id":""}`), "", 400},
		{"id 10,000 bytes", ok(`{"id":"` + strings.Repeat("x", 10000) + `"}`), "", 400},
		{"label injection in id", ok(`{"id":"m1\"}\nliveswitch_server_up{id=\"x"}`), "", 400},
		{"label injection in region", ok(`{"id":"m1","region":"eu\"} 1\nfake{a=\""}`), "", 400},
		{"NUL in machineName", ok(`{"id":"m1","machineName":"a\u0000b"}`), "", 400},
		{"escape character in version", ok(`{"id":"m1","version":"1\u001b[31m"}`), "", 400},
		{"version an object", ok(`{"id":"m1","version":{"major":1}}`), "", 400},
		{"coreCount a word", ok(`{"id":"m1","coreCount":"many"}`), "", 400},
		{"coreCount negative", ok(`{"id":"m1","coreCount":-8}`), "", 400},
		{"coreCount huge", ok(`{"id":"m1","coreCount":10000000000}`), "", 400},
		{"coreCount fractional", ok(`{"id":"m1","coreCount":2.5}`), "", 400},
		{"deploymentId an array", ok(`{"id":"m1","deploymentId":["d"]}`), "", 400},
		{"region a boolean", ok(`{"id":"m1","region":true}`), "", 400},
		{"invalid UTF-8", ok(`{"id":"m1","machineName":"` + "\xff\xfe" + `"}`), "", 400},
		{"raw NUL byte", ok(`{"id":"m1"}`) + "\x00", "", 400},
		{"100 levels of nesting", strings.Repeat("[", 100) + strings.Repeat("]", 100), "", 400},
		{"nesting inside the server object", ok(`{"id":"m1","networkInterfaces":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`), "", 400},
		{"origin with a space", hostileEvent(ts, "media server.unregistered", "media server", `{"id":"m1"}`), "", 400},
		{"origin with a quote", `{"timestamp":` + ts + `,"type":"me\"dia.started","me\"dia":{"id":"m1"}}`, "", 400},
		{"origin of 33 characters", hostileEvent(ts, strings.Repeat("o", 33)+".started", strings.Repeat("o", 33), `{"id":"m1"}`), "", 400},
		{"members differing only in case", `{"timestamp":` + ts + `,"TYPE":"gateway.stopped","type":"gateway.stopped","gateway":{"id":"g1"}}`, "", 400},
		{"batch with one injected event", "[" + ok(`{"id":"m1"}`) + "," + ok(`{"id":"x\ny"}`) + "]", "", 400},
		{"batch of 1,001 events", batch(1001, ok(`{"id":"m1"}`)), "", 400},
		{"1,000,000-element array", batch(1_000_000, "0"), "", 413},
		{"10 MB body", `{"pad":"` + strings.Repeat("a", 10<<20) + `"}`, "", 413},
		{"gzip body declared", gz.String(), "gzip", 415},
		{"gzip bomb undeclared", gz.String(), "", 400},
		{"unknown action", hostileEvent(ts, "mediaserver.exploded", "mediaserver", `{"id":"m1"}`), "", 202},
		{"client event", `{"timestamp":` + ts + `,"origin":"client","type":"client.unregistered","client":{"id":"m1"}}`, "", 202},
		{"stats of an unknown server", hostileEvent(ts, "mediaserver.stats", "mediaserver", `{"id":"nobody"}`), "", 202},
		{"stats with a garbage object", hostileEvent(ts, "mediaserver.stats", "mediaserver", `[1,{"x":null}]`), "", 202},
		{"replayed old event", serverEvent(now-10, "mediaserver.started", `{"id":"m1","region":"eu","deploymentId":"d","coreCount":8}`), "", 202},
	}
	checkReadmeKinds(t, cases)
	_, before := srv.do(t, "GET", "/metrics", "")
	// "Unchanged" must mean something: the seeded servers are in the fleet.
	for _, series := range []string{
		`liveswitch_server_state{deployment_id="d",id="m1",origin="mediaserver",region="eu",state="registered"} 1`,
		`liveswitch_server_up{deployment_id="d",id="g1",origin="gateway",region=""} 1`,
	} {
		if !strings.Contains(fleetLines(before), series) {
			t.Fatalf("the seeded fleet lacks %s:\n%s", series, fleetLines(before))
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, strings.NewReader(tc.body))
			if tc.contentEncoding != "" {
				req.Header.Set("Content-Encoding", tc.contentEncoding)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			_, after := srv.do(t, "GET", "/metrics", "")
			if fleetLines(after) != fleetLines(before) {
				t.Fatalf("the fleet changed:\n%s\nwas:\n%s", fleetLines(after), fleetLines(before))
			}
		})
	}
}

// hostileKinds names, for each kind of hostile input docs/security.md
// section lists, the cases of TestHostileInputs that are of that kind.
var hostileKinds = map[string][]string{
	"truncated JSON": {"truncated JSON", "truncated inside a string"},
	"wrong types": {"timestamp not numeric", "timestamp boolean", "type a number", "server object a string",
		"id a number", "version an object", "coreCount a word", "deploymentId an array", "region a boolean"},
	"nulls":                  {"JSON null", "timestamp null", "type null", "server object null", "id null"},
	"huge numbers":           {"timestamp 1e400", "timestamp beyond int64", "coreCount huge"},
	"bad timestamps":         {"negative timestamp", "zero timestamp", "far-future timestamp", "fractional timestamp"},
	"10 MB bodies":           {"10 MB body"},
	"million-element arrays": {"1,000,000-element array"},
	"deep nesting":           {"100 levels of nesting", "nesting inside the server object"},
	"invalid UTF-8":          {"invalid UTF-8"},
	"NUL bytes":              {"NUL in machineName", "raw NUL byte"},
	"label injection":        {"label injection in id", "label injection in region", "batch with one injected event"},
	"mismatched origins":     {"origin disagrees with type", "object under another key"},
	"gzip bombs":             {"gzip body declared", "gzip bomb undeclared"},
}

// readmeHostileRE finds docs/security.md's list of the hostile inputs the table checks.
var readmeHostileRE = regexp.MustCompile(`a table of hostile inputs \(([^)]*)\)`)

// checkReadmeKinds fails unless every kind of hostile input docs/security.md promises
// is covered by a case of the table, so that neither a case the doc relies
// on nor a promise without a case can go unnoticed.
func checkReadmeKinds(t *testing.T, cases []hostileCase) {
	t.Helper()
	readme, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	m := readmeHostileRE.FindStringSubmatch(strings.Join(strings.Fields(string(readme)), " "))
	if m == nil {
		t.Fatal("docs/security.md no longer lists the hostile inputs (\"a table of hostile inputs (...)\"); update this test")
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	for _, kind := range strings.Split(m[1], ", ") {
		kind = strings.ReplaceAll(kind, "`", "")
		if kind == "..." {
			continue
		}
		covering, ok := hostileKinds[kind]
		if !ok {
			t.Errorf("docs/security.md promises hostile inputs of kind %q, but hostileKinds names no case of it", kind)
		}
		for _, name := range covering {
			if !slices.Contains(names, name) {
				t.Errorf("docs/security.md promises %q; its case %q is not in the table", kind, name)
			}
		}
	}
}
