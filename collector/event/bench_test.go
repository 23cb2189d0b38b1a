package event

import (
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// realisticEvent is a server event as LiveSwitch sends them.
var realisticEvent = []byte(fixture.EventJSON(1700000000000, "mediaserver", "registered", `{"iceServerUris":["stun:stun.example.com:3478"],`+
	`"region":"us-east","id":"dc5e5677-5b0d-4b3e-b2a5-42761849ae19","version":"1.24.2.0","machineName":"ms-1",`+
	`"coreCount":12,"operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64",`+
	`"networkInterfaces":[{"name":"eth0","addresses":["10.0.0.4"]}],"deploymentId":"prod"}`))

// BenchmarkDecode measures decoding one realistic event.
func BenchmarkDecode(b *testing.B) {
	body := realisticEvent
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, DefaultDecodeOptions, fixture.Now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeManyMembers decodes a hostile 1 MiB event of 100,000
// made-up members: its cost must grow linearly with the body (it was
// quadratic once, 26 s for this body).
func BenchmarkDecodeManyMembers(b *testing.B) {
	body := manyMembers(100000, "")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, DecodeOptions{}, fixture.Now); err != nil {
			b.Fatal(err)
		}
	}
}
