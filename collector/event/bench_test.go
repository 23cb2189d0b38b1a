package event

import (
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

var realisticEvent = []byte(fixture.EventJSON(1700000000000, "mediaserver", "registered", `{"iceServerUris":["stun:stun.example.com:3478"],`+
	`"region":"us-east","id":"dc5e5677-5b0d-4b3e-b2a5-42761849ae19","version":"1.24.2.0","machineName":"ms-1",`+
	`"coreCount":12,"operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64",`+
	`"networkInterfaces":[{"name":"eth0","addresses":["10.0.0.4"]}],"deploymentId":"prod"}`))

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

func BenchmarkDecodeManyMembers(b *testing.B) {
	body := manyMembers(100000, "")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, DecodeOptions{}, fixture.Now); err != nil {
			b.Fatal(err)
		}
	}
}
