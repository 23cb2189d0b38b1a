package writer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/internal/fixture"
)

// BenchmarkObserve measures one poll's observation of 1,000 listed media
// servers and 3 applications, applied and (with a store) committed with its
// view: the steady state, in which no server changes.
func BenchmarkObserve(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			w := benchWriter(b, durable)
			o := &fleet.Observation{AtMs: fixture.Now.UnixMilli(), IntervalMs: 15000}
			for i := range 1000 {
				o.MediaServers = append(o.MediaServers, fleet.MediaServerFacts{ID: fmt.Sprintf("ms-%04d", i), Region: "eu-west",
					DeploymentID: "prod", Version: "1.24.2", CoreCount: 16, UsedCapacity: fixture.Ptr(0.5), Available: fixture.Ptr(true),
					Active: fixture.Ptr(true), Draining: fixture.Ptr(false), OverCapacity: fixture.Ptr(false)})
			}
			for i := range 3 {
				o.Applications = append(o.Applications, fleet.ApplicationFacts{ID: fmt.Sprintf("app-%d", i), Channels: fixture.Ptr(int64(10))})
			}
			b.ReportAllocs()
			for b.Loop() {
				o.AtMs += time.Second.Milliseconds()
				if err := w.Observe(context.Background(), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
