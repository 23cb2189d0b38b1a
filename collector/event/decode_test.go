package event

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

func TestDecodeEveryOriginAndAction(t *testing.T) {
	for _, origin := range append(fixture.Origins, "newcomponent_2") {
		for a := range NumActions {
			action := Action(a)
			t.Run(origin+"."+action.String(), func(t *testing.T) {
				body := fixture.EventJSON(1700000000000, origin, action.String(),
					`{"id":"s1","version":"1.2.3","coreCount":4,"region":"eu","deploymentId":"d1"}`)
				evs, err := Decode([]byte(body), DefaultDecodeOptions, fixture.Now)
				if err != nil {
					t.Fatal(err)
				}
				want := Event{Timestamp: 1700000000000, Type: origin + "." + action.String(), Kind: KindLifecycle,
					Action: action, Origin: origin,
					Server: Info{ID: "s1", Version: "1.2.3", CoreCount: 4, Region: "eu", DeploymentID: "d1"}}
				if len(evs) != 1 || evs[0] != want {
					t.Fatalf("got %+v, want %+v", evs, want)
				}
			})
		}
	}
}

func TestDecodeFixtures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		kinds []Kind
		info  Info
	}{
		{"gateway-started.json", []Kind{KindLifecycle}, Info{ID: "dc5e5677-5b0d-4b3e-b2a5-42761849ae19",
			Version: "1.24.2.0", MachineName: "MY-SERVER", CoreCount: 12, OperatingSystem: "windows",
			OperatingSystemVersion: "6.2.9200.0", Architecture: "x64", DeploymentID: "prod"}},
		{"mediaserver-registered.json", []Kind{KindLifecycle}, Info{ID: "dc5e5677-5b0d-4b3e-b2a5-42761849ae19",
			Version: "0.0", MachineName: "MY-SERVER", CoreCount: 12, OperatingSystem: "windows",
			OperatingSystemVersion: "6.2.9200.0", Architecture: "x64", DeploymentID: "prod", Region: "en-us"}},
		{"batch.json", []Kind{KindLifecycle, KindLifecycle, KindIgnored}, Info{ID: "ms-1", Version: "1.24.2.0",
			MachineName: "ms-a", CoreCount: 8, DeploymentID: "prod", Region: "us-east"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := Decode(body, DefaultDecodeOptions, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tc.kinds) {
				t.Fatalf("got %d events, want %d", len(evs), len(tc.kinds))
			}
			for i, k := range tc.kinds {
				if evs[i].Kind != k {
					t.Errorf("event %d: kind %d, want %d", i, evs[i].Kind, k)
				}
			}
			if evs[0].Server != tc.info {
				t.Errorf("server %+v, want %+v", evs[0].Server, tc.info)
			}
		})
	}
}

func TestDecodeTolerance(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Event
	}{
		{"member names in any case",
			`{"TimeStamp":1700000000000,"ORIGIN":"MediaServer","Type":"mediaserver.started","MediaServer":{"ID":"a","MachineName":"m","CORECOUNT":2}}`,
			Event{Timestamp: 1700000000000, Type: "mediaserver.started", Origin: "mediaserver", Action: ActionStarted,
				Server: Info{ID: "a", MachineName: "m", CoreCount: 2}}},
		{"origin left out",
			`{"timestamp":1700000000000,"type":"gateway.stopped","gateway":{"id":"g"}}`,
			Event{Timestamp: 1700000000000, Type: "gateway.stopped", Origin: "gateway", Action: ActionStopped, Server: Info{ID: "g"}}},
		{"numeric version and string timestamp",
			`{"timestamp":"1700000000000","origin":"gateway","type":"gateway.started","gateway":{"id":"g","version":1.5}}`,
			Event{Timestamp: 1700000000000, Type: "gateway.started", Origin: "gateway", Server: Info{ID: "g", Version: "1.5"}}},
		{"nulls and unknown members",
			`{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","extra":{"a":[1,2]},"gateway":{"id":"g","version":null,"region":null,"future":true}}`,
			Event{Timestamp: 1700000000000, Type: "gateway.started", Origin: "gateway", Server: Info{ID: "g"}}},
		{"stats of a server",
			`{"timestamp":1700000000000,"origin":"mediaserver","type":"mediaserver.stats","mediaserver":{"id":"m"}}`,
			Event{Timestamp: 1700000000000, Type: "mediaserver.stats", Origin: "mediaserver", Kind: KindHeartbeat, Server: Info{ID: "m"}}},
		{"stats with an unrecognisable payload",
			`{"timestamp":1700000000000,"origin":"gateway","type":"gateway.stats","gateway":[1,2,3]}`,
			Event{Timestamp: 1700000000000, Type: "gateway.stats", Origin: "gateway", Kind: KindHeartbeat}},
		{"client event",
			`{"timestamp":1224486000000,"origin":"client","type":"client.registered","client":{"version":"1.0.0","applicationId":"x","id":"c"}}`,
			Event{Timestamp: 1224486000000, Type: "client.registered", Origin: "client", Kind: KindIgnored}},
		{"connection event without object",
			`{"timestamp":1700000000000,"origin":"connection","type":"connection.connected"}`,
			Event{Timestamp: 1700000000000, Type: "connection.connected", Origin: "connection", Kind: KindIgnored}},
		{"unknown kind of a known origin",
			`{"timestamp":1700000000000,"origin":"gateway","type":"gateway.updated","gateway":{"id":"g"}}`,
			Event{Timestamp: 1700000000000, Type: "gateway.updated", Origin: "gateway", Kind: KindIgnored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decode([]byte(tc.body), DefaultDecodeOptions, fixture.Now)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0] != tc.want {
				t.Fatalf("got %+v\nwant %+v", evs, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	const ok = `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`
	for _, tc := range []struct {
		name, body, reason string
	}{
		{"empty body", ``, "empty body"},
		{"not JSON", `hello`, "malformed JSON"},
		{"truncated", ok[:40], "malformed JSON"},
		{"a string", `"gateway.started"`, "malformed JSON"},
		{"null", `null`, "null"},
		{"empty batch", `[]`, "empty batch"},
		{"invalid UTF-8", "{\"timestamp\":1,\"type\":\"gateway.started\xff\"}", "UTF-8"},
		{"missing timestamp", `{"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, `missing "timestamp"`},
		{"zero timestamp", `{"timestamp":0,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "not after the Unix epoch"},
		{"timestamp in seconds", `{"timestamp":1764000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "timestamp\" 1764000000 looks like seconds; LiveSwitch sends milliseconds since the epoch"},
		{"timestamp just before 10^12 ms", `{"timestamp":999999999999,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "looks like seconds"},
		{"negative timestamp", `{"timestamp":-5,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "not after the Unix epoch"},
		{"fractional timestamp", `{"timestamp":1.5,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "whole number"},
		{"six minutes ahead", fixture.EventJSON(fixture.Now.Add(6*time.Minute).UnixMilli(), "gateway", "started", `{"id":"g"}`), "more than 5m0s ahead"},
		{"far-future timestamp", `{"timestamp":32503680000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "ahead of the exporter's clock"},
		{"timestamp as object", `{"timestamp":{},"origin":"gateway","type":"gateway.started","gateway":{"id":"g"}}`, "whole number"},
		{"missing type", `{"timestamp":1700000000000,"origin":"gateway","gateway":{"id":"g"}}`, `missing "type"`},
		{"type not a string", `{"timestamp":1700000000000,"origin":"gateway","type":7,"gateway":{"id":"g"}}`, `"type" must be a string`},
		{"type without action", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway","gateway":{"id":"g"}}`, "not of the form"},
		{"origin disagrees with type", `{"timestamp":1700000000000,"origin":"mediaserver","type":"gateway.started","gateway":{"id":"g"}}`, "does not match"},
		{"object key disagrees", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","mediaserver":{"id":"g"}}`, `missing the "gateway" object`},
		{"origin with bad characters", `{"timestamp":1700000000000,"type":"gate-way.started","gate-way":{"id":"g"}}`, "not a valid origin"},
		{"origin too long", fixture.EventJSON(1700000000000, strings.Repeat("a", 33), "started", `{"id":"g"}`), "not a valid origin"},
		{"missing id", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"machineName":"m"}}`, `missing "id"`},
		{"empty id", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":""}}`, `missing "id"`},
		{"null object", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":null}`, "null"},
		{"id not a string", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":5}}`, `"id"`},
		{"machineName not a string", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","machineName":["x"]}}`, `"machineName"`},
		{"coreCount not a number", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","coreCount":"many"}}`, "coreCount"},
		{"coreCount negative", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","coreCount":-1}}`, "coreCount"},
		{"coreCount huge", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","coreCount":1e30}}`, "coreCount"},
		{"version an object", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","version":{}}}`, "version"},
		{"id with newline", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g\n}"}}`, "control characters"},
		{"region with NUL", `{"timestamp":1700000000000,"origin":"gateway","type":"gateway.started","gateway":{"id":"g","region":"a\u0000"}}`, "control characters"},
		{"id too long", fixture.EventJSON(1700000000000, "gateway", "started", `{"id":"`+strings.Repeat("x", 257)+`"}`), "longer than"},
		{"members differing in case", `{"timestamp":1700000000000,"Timestamp":1700000000001,"type":"gateway.started","gateway":{"id":"g"}}`, "twice"},
		{"one bad event in a batch", `[` + ok + `,{"timestamp":1700000000000,"type":"gateway.started"}]`, "event 1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decode([]byte(tc.body), DefaultDecodeOptions, fixture.Now)
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("got %v, %v; want an InvalidError", evs, err)
			}
			if !strings.Contains(invalid.Error(), tc.reason) {
				t.Fatalf("reason %q does not mention %q", invalid.Error(), tc.reason)
			}
			if strings.ContainsAny(invalid.Error(), "\n\r") {
				t.Fatalf("reason %q is not one line", invalid.Error())
			}
		})
	}
}

func TestDecodeBatchLimit(t *testing.T) {
	ev := fixture.EventJSON(1700000000000, "gateway", "started", `{"id":"g"}`)
	body := "[" + strings.TrimSuffix(strings.Repeat(ev+",", 3), ",") + "]"
	if _, err := Decode([]byte(body), DecodeOptions{MaxEvents: 3}, fixture.Now); err != nil {
		t.Fatalf("3 events within a limit of 3: %v", err)
	}
	_, err := Decode([]byte(body), DecodeOptions{MaxEvents: 2}, fixture.Now)
	var invalid *InvalidError
	if !errors.As(err, &invalid) || invalid.Events != 3 || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("3 events over a limit of 2: got %v", err)
	}
}

// manyMembers is an event padded with n made-up top-level members.
func manyMembers(n int, extra string) []byte {
	var b strings.Builder
	b.WriteString(`{"timestamp":1700000000000,"type":"gateway.started","gateway":{"id":"g"}`)
	for i := range n {
		fmt.Fprintf(&b, `,"m%d":1`, i)
	}
	b.WriteString(extra + "}")
	return []byte(b.String())
}

func TestDecodeManyMembers(t *testing.T) {
	for _, tc := range []struct {
		n     int
		extra string
		ok    bool
	}{
		{5, "", true}, {5, `,"M3":2`, false}, // compared one by one
		{5000, "", true}, {5000, `,"M4999":2`, false}, {5000, `,"TYPE":"x"`, false}, // through the map
	} {
		_, err := Decode(manyMembers(tc.n, tc.extra), DecodeOptions{}, fixture.Now)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "given twice")) {
			t.Errorf("%d members + %q: %v", tc.n, tc.extra, err)
		}
	}
}
