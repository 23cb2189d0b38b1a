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

// FuzzDecode: whatever the body, Decode never panics, rejects with a
// one-line *InvalidError, or returns events that respect every bound the
// metrics rely on.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		fixture.EventJSON(1700000000000, "mediaserver", "unregistered", `{"id":"m","version":1.5,"coreCount":"4"}`),
		`{"timestamp":1700000000000,"type":"gateway.stats"}`,
		`[{"timestamp":1,"type":"client.left"}]`, `[[[[]]]]`, `{"a":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Decode(body, DefaultDecodeOptions, fixture.Now)
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) || strings.ContainsAny(err.Error(), "\n\r") || !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q is not a one-line InvalidError", err)
			}
			return
		}
		if len(events) == 0 || len(events) > DefaultDecodeOptions.MaxEvents {
			t.Fatalf("%d events", len(events))
		}
		for _, ev := range events {
			checkEvent(t, ev)
		}
		again, err := Decode(body, DefaultDecodeOptions, fixture.Now)
		if err != nil || !reflect.DeepEqual(again, events) {
			t.Fatalf("decoding twice differs: %v", err)
		}
	})
}

func checkEvent(t *testing.T, ev Event) {
	t.Helper()
	if !validOrigin(ev.Origin) {
		t.Fatalf("origin %q escaped validation", ev.Origin)
	}
	if ev.Timestamp <= 0 || ev.Timestamp > fixture.Now.Add(DefaultDecodeOptions.MaxFutureSkew).UnixMilli() {
		t.Fatalf("timestamp %d escaped validation", ev.Timestamp)
	}
	if ev.Kind == KindLifecycle && ev.Server.ID == "" {
		t.Fatal("a lifecycle event without a server id")
	}
	if ev.Server.ID != "" {
		if err := ev.Server.Validate(); err != nil {
			t.Fatalf("server %+v escaped validation: %v", ev.Server, err)
		}
		if ev.Server.CoreCount < 0 || ev.Server.CoreCount > MaxCoreCount {
			t.Fatalf("core count %d", ev.Server.CoreCount)
		}
	}
}
