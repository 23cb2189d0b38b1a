package replica

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

func testEntry() *logEntry {
	used := 0.42
	return &logEntry{Nonce: "abc/7", Commands: []*writer.Command{
		{ReceivedMs: 1700000000123, Events: []event.Event{
			{Timestamp: 1700000000000, Type: "mediaserver.registered", Kind: event.KindLifecycle, Action: event.ActionRegistered,
				Origin: "mediaserver", Server: event.Info{ID: "ms-1", Version: "1.2", MachineName: "m", CoreCount: 8,
					OperatingSystem: "linux", OperatingSystemVersion: "6.1", Architecture: "x64", DeploymentID: "d", Region: "é"}},
			{Timestamp: 1700000000001, Type: "gateway.stats", Kind: event.KindHeartbeat, Origin: "gateway"},
			{Timestamp: 1700000000002, Type: "newthing.started", Kind: event.KindLifecycle, Origin: "newthing", Server: event.Info{ID: "n"}},
		}},
		{Forget: &fleet.Key{Origin: "gateway", ID: "g/1"}},
		{SweepMs: 1700000009999},
		{Observation: &fleet.Observation{AtMs: 5, IntervalMs: 15000, MediaServers: []fleet.MediaServerFacts{{ID: "ms-1", UsedCapacity: &used}}}},
	}}
}

// TestEntryRoundTrip: an entry reads back as written, in the binary form
// and in the JSON form of earlier versions.
func TestEntryRoundTrip(t *testing.T) {
	want := testEntry()
	bin, err := encodeEntry(want)
	if err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"binary": bin, "JSON of earlier versions": old} {
		got, err := decodeEntry(data)
		if err != nil || !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
}

// TestEntryRefusesDamage: a truncated, extended or unknown entry is an
// error, never a panic or a wrong command.
func TestEntryRefusesDamage(t *testing.T) {
	bin, _ := encodeEntry(testEntry())
	for _, bad := range [][]byte{nil, {}, {9, 0}, bin[:len(bin)-1], append(append([]byte{}, bin...), 0), bin[:5]} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("%x decoded without error", bad)
		}
	}
}

// FuzzEntry: any bytes decode without panic, and what decodes encodes back
// to an entry that decodes the same.
func FuzzEntry(f *testing.F) {
	bin, _ := encodeEntry(testEntry())
	f.Add(bin)
	f.Add([]byte(`{"n":"x","c":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		again, err := encodeEntry(&e)
		if err != nil {
			return
		}
		back, err := decodeEntry(again)
		if err != nil {
			t.Fatalf("a re-encoded entry does not decode: %v", err)
		}
		if third, _ := encodeEntry(&back); !bytes.Equal(third, again) {
			t.Fatalf("an entry changes when read and written again:\n%x\n%x", again, third)
		}
	})
}
