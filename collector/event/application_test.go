package event

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

func readApplicationFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "applications", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeApplicationFixtures(t *testing.T) {
	const docsApp = "50836b92-a7e4-4bfa-b79c-3d1b5d5a6c2e"
	for _, tc := range []struct {
		file string
		want []ApplicationEvent
	}{
		// The sample of LiveSwitch's documentation: origin "client" for a
		// channel event, and both objects naming the application.
		{"channel-client-joined.json", []ApplicationEvent{{Timestamp: 1224486000000, Type: "channel.client.joined", ApplicationID: docsApp,
			ChannelID: "a064a6f7-5f40-4f67-a0fb-7a1c4c2b7d9e", ClientID: "c314023e-0a6b-4ed8-8ab3-6a4a0f0e3c11"}}},
		{"connection-connected.json", []ApplicationEvent{{Timestamp: 1700000001234, Type: "connection.connected", ApplicationID: "my-app",
			ConnectionID: "5b0f6c0e-7d1f-4a7e-9a51-2f3c6e0d9a10", ConnectionType: "sfu"}}},
		// physicalMemory as a string (the docs' sample) and as a number (the
		// SDK's), clientTag and tag: none of them is read.
		{"client-registered.json", []ApplicationEvent{{Timestamp: 1700000000000, Type: "client.registered", ApplicationID: "my-app", ClientID: "c-1"}}},
		{"client-updated-sdk.json", []ApplicationEvent{{Timestamp: 1700000000500, Type: "client.updated", ApplicationID: "my-app", ClientID: "c-1"}}},
		{"batch.json", []ApplicationEvent{
			{Timestamp: 1700000000000, Type: "channel.activated", ApplicationID: "my-app", ChannelID: "support"},
			{Timestamp: 1700000000100, Type: "connection.initializing", ApplicationID: "my-app", ConnectionID: "conn-1", ConnectionType: "mcu"},
			{Timestamp: 1700000000900, Type: "connection.failed", ApplicationID: "my-app", ConnectionID: "conn-1", ConnectionType: "mcu",
				Error: "IceFailed ICE failed"},
			{Timestamp: 1700000001000, Type: "connection.stats", ApplicationID: "my-app", ConnectionID: "conn-2"},
			{Timestamp: 1700000002000, Type: "channel.deactivated", ApplicationID: "my-app", ChannelID: "support"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := DecodeApplications(readApplicationFixture(t, tc.file), DefaultDecodeOptions, fixture.Now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeApplicationsTolerates(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       ApplicationEvent
	}{
		{"no object at all", `{"timestamp":1700000000000,"type":"connection.stats"}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "connection.stats"}},
		{"null objects", `{"timestamp":1700000000000,"type":"client.left","client":null,"channel":null}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "client.left"}},
		{"null members", `{"timestamp":1700000000000,"type":"connection.closed","connection":{"applicationId":null,"id":null,"type":null}}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "connection.closed"}},
		{"names in another case, type in capitals", `{"TimeStamp":1700000000000,"Type":"Connection.Connecting","Connection":{"ApplicationID":"a","ID":"c","TYPE":"peer"}}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "connection.connecting", ApplicationID: "a", ConnectionID: "c", ConnectionType: "peer"}},
		{"an unknown kind", `{"timestamp":1700000000000,"type":"connection.exploded","connection":{"applicationId":"a"}}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "connection.exploded", ApplicationID: "a"}},
		{"the application named by one object only", `{"timestamp":1700000000000,"type":"channel.client.left","client":{"id":"c"},"channel":{"applicationId":"a"}}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "channel.client.left", ApplicationID: "a", ClientID: "c"}},
		{"members the exporter does not read, of any type", `{"timestamp":1700000000000,"type":"client.stats","id":7,"forced":true,"client":{"applicationId":"a","roles":{"x":[1,2]},"coreCount":"many"}}`,
			ApplicationEvent{Timestamp: 1700000000000, Type: "client.stats", ApplicationID: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeApplications([]byte(tc.body), DefaultDecodeOptions, fixture.Now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDecodeConnectionErrors: connection.failed's "error" is read whatever
// its shape, for its class only; it never makes a body invalid.
func TestDecodeConnectionErrors(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []struct{ name, value, want string }{
		{"missing", ``, ""},
		{"null", `,"error":null`, ""},
		{"empty string", `,"error":""`, ""},
		{"a string", `,"error":"DTLS handshake failed"`, "DTLS handshake failed"},
		{"a string with escapes and a newline", `,"error":"ICE\nfailed \u00e9"`, "ICE\nfailed é"},
		{"an object with code and message", `,"error":{"code":"IceFailed","message":"ICE failed","stack":["x"]}`, "IceFailed ICE failed"},
		{"an object in another case", `,"ERROR":{"Message":"timed out","Code":7}`, "timed out"},
		{"an object without text", `,"error":{"code":7}`, "object"},
		{"a number", `,"error":408`, "number"},
		{"an array", `,"error":["ice"]`, "array"},
		{"a long message, cut on a character boundary", `,"error":"` + long + `"`, long[:maxErrorLen]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"timestamp":1700000000000,"type":"connection.failed","connection":{"applicationId":"a","id":"c"` + tc.value + `}}`
			got, err := DecodeApplications([]byte(body), DefaultDecodeOptions, fixture.Now)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Error != tc.want || !utf8.ValidString(got[0].Error) {
				t.Fatalf("error %q, want %q", got[0].Error, tc.want)
			}
		})
	}
}

func TestDecodeApplicationsRejects(t *testing.T) {
	app := func(typ, object string) string {
		return `{"timestamp":1700000000000,"type":"` + typ + `",` + object + `}`
	}
	server := fixture.EventJSON(1700000000000, "mediaserver", "started", `{"id":"m1"}`)
	for _, tc := range []struct {
		name, body string
		index      int
		reason     string
	}{
		{"mixed with a server event", "[" + app("client.registered", `"client":{"applicationId":"a"}`) + "," + server + "]", -1, "mixes server events and application events"},
		{"no timestamp", `{"type":"client.registered","client":{"applicationId":"a"}}`, -1, `missing "timestamp"`},
		{"timestamp in seconds", `{"timestamp":1700000000,"type":"client.registered"}`, -1, "looks like seconds"},
		{"far-future timestamp", `{"timestamp":32503680000000,"type":"client.registered"}`, -1, "ahead of the exporter's clock"},
		{"origin a number", `{"timestamp":1700000000000,"origin":3,"type":"client.registered"}`, -1, `"origin" must be a string`},
		{"applicationId a number", app("client.registered", `"client":{"applicationId":42}`), -1, `"applicationId" has the wrong type (number)`},
		{"connection id an object", app("connection.connected", `"connection":{"applicationId":"a","id":{}}`), -1, `"id" has the wrong type (object)`},
		{"connection object a string", app("connection.connected", `"connection":"c-1"`), -1, `"connection" object: malformed JSON: string, want an object`},
		{"objects naming two applications", app("channel.client.joined", `"client":{"applicationId":"a"},"channel":{"applicationId":"b"}`), -1, "names another application"},
		{"label injection in applicationId", app("client.registered", `"client":{"applicationId":"a\"}\nfake{x=\""}`), -1, "control characters"},
		{"applicationId of 300 bytes", app("client.registered", `"client":{"applicationId":"`+strings.Repeat("a", 300)+`"}`), -1, "longer than 256 bytes"},
		{"second event of a batch broken", "[" + app("client.registered", `"client":{}`) + `,{"timestamp":1700000000000,"type":"client.left","client":[]}]`, 1, "want an object"},
		{"an event without a type beside application events", "[" + app("client.registered", `"client":{}`) + `,{"timestamp":1700000000000}]`, 1, `missing "type"`},
		{"members differing only in case", `{"timestamp":1700000000000,"type":"client.left","TYPE":"client.left"}`, -1, "given twice"},
		{"truncated", `[{"timestamp":1700000000000,"type":"client.left"`, -1, "malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeApplications([]byte(tc.body), DefaultDecodeOptions, fixture.Now)
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			if invalid.Index != tc.index || !strings.Contains(invalid.Reason, tc.reason) {
				t.Fatalf("got index %d %q, want index %d containing %q", invalid.Index, invalid.Reason, tc.index, tc.reason)
			}
		})
	}
}

// TestDecodeApplicationsLeavesServerBodies: bodies without an application
// event, valid or not, are the fleet's decoder's to judge.
func TestDecodeApplicationsLeavesServerBodies(t *testing.T) {
	for _, body := range []string{
		fixture.EventJSON(1700000000000, "mediaserver", "started", `{"id":"m1"}`),
		fixture.EventJSON(1700000000000, "gateway", "started", `{"id":"g1","machineName":"client.example.com"}`),
		"[" + fixture.EventJSON(1700000000000, "gateway", "stats", `{"id":"g1","note":"connection.stats"}`) + "]",
		`{"timestamp":1700000000000,"type":"mediaserver.started","mediaserver":{"id":"client.1"}`, // truncated
		`{"type":"\u0063lient.registered"}`,
		`{"note":"channel.x"}`,
		"",
	} {
		if _, err := DecodeApplications([]byte(body), DefaultDecodeOptions, fixture.Now); !errors.Is(err, ErrNotApplications) {
			t.Errorf("%s: got %v, want ErrNotApplications", body, err)
		}
	}
}

// TestDecodeApplicationsSharesTheBodyBounds: the limits of server bodies
// bound application bodies too.
func TestDecodeApplicationsSharesTheBodyBounds(t *testing.T) {
	ev := `{"timestamp":1700000000000,"type":"client.left"}`
	for _, tc := range []struct{ name, body, reason string }{
		{"batch over the limit", "[" + strings.TrimSuffix(strings.Repeat(ev+",", 1001), ",") + "]", "exceeds the limit of 1000"},
		{"deep nesting", `{"timestamp":1700000000000,"type":"client.left","client":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}", "nested deeper"},
		{"invalid UTF-8", `{"timestamp":1700000000000,"type":"client.left","x":"` + "\xff" + `"}`, "not valid UTF-8"},
		{"empty batch of an application", `[]` + ` "client."`, "malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeApplications([]byte(tc.body), DefaultDecodeOptions, fixture.Now)
			var invalid *InvalidError
			if !errors.As(err, &invalid) || !strings.Contains(invalid.Reason, tc.reason) {
				t.Fatalf("got %v, want an *InvalidError containing %q", err, tc.reason)
			}
		})
	}
}

// FuzzDecodeApplications: whatever the body, DecodeApplications never
// panics, leaves it to the fleet, rejects it with a one-line *InvalidError,
// or returns events whose label values are bounded.
func FuzzDecodeApplications(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "applications", "*.json"))
	for _, file := range files {
		f.Add(readApplicationFixture(f, filepath.Base(file)))
	}
	f.Add([]byte(`[{"timestamp":1700000000000,"type":"client.left"},{"timestamp":1700000000000,"type":"gateway.started"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := DecodeApplications(body, DefaultDecodeOptions, fixture.Now)
		var invalid *InvalidError
		switch {
		case errors.Is(err, ErrNotApplications):
			return
		case errors.As(err, &invalid):
			if strings.ContainsAny(err.Error(), "\n\r") || !utf8.ValidString(err.Error()) {
				t.Fatalf("reason %q is not one line", err)
			}
			return
		case err != nil:
			t.Fatalf("error %v is neither ErrNotApplications nor an *InvalidError", err)
		}
		for _, ev := range events {
			for _, s := range []string{ev.Type, ev.ApplicationID, ev.ConnectionType, ev.ConnectionID, ev.ChannelID, ev.ClientID} {
				if len(s) > maxLabelLen || strings.ContainsFunc(s, isControl) || !utf8.ValidString(s) {
					t.Fatalf("label value %q escaped validation", s)
				}
			}
			if len(ev.Error) > maxErrorLen || !utf8.ValidString(ev.Error) {
				t.Fatalf("error text %q escaped its bound", ev.Error)
			}
			if prefix, _, _ := strings.Cut(ev.Type, "."); !applicationOrigins[prefix] {
				t.Fatalf("type %q is not an application event's", ev.Type)
			}
		}
	})
}

// BenchmarkServerBodyRouting measures what routing costs a server webhook:
// the byte scan that hands it to the fleet's decoder (compare with
// BenchmarkDecode, which decodes the same body).
func BenchmarkServerBodyRouting(b *testing.B) {
	body := realisticEvent
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeApplications(body, DefaultDecodeOptions, fixture.Now); !errors.Is(err, ErrNotApplications) {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeApplications measures decoding one connection event.
func BenchmarkDecodeApplications(b *testing.B) {
	body := readApplicationFixture(b, "connection-connected.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeApplications(body, DefaultDecodeOptions, fixture.Now); err != nil {
			b.Fatal(err)
		}
	}
}
