package simulate

import (
	"bytes"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
)

func TestGeneratorEventsAreValidAndReproducible(t *testing.T) {
	clock := func() time.Time { return time.UnixMilli(1700000000000) }
	a := NewGenerator(DefaultFleetConfig, clock)
	b := NewGenerator(DefaultFleetConfig, clock)
	kinds := map[string]int{}
	for i := range 2000 {
		ea, eb := a.Next(), b.Next()
		if ea.Key != eb.Key || !bytes.Equal(ea.Body, eb.Body) {
			t.Fatalf("event %d differs between two generators of one seed", i)
		}
		evs, err := event.Decode(ea.Body, event.DefaultDecodeOptions, clock().Add(time.Hour))
		if err != nil {
			t.Fatalf("event %d is not valid: %v\n%s", i, err, ea.Body)
		}
		kinds[evs[0].Type]++
	}
	for _, typ := range []string{"gateway.started", "mediaserver.registered", "mediaserver.unregistered",
		"mediaserver.stopped", "sipconnector.registered", "recordingmuxer.started", "mediaserver.stats"} {
		if kinds[typ] == 0 {
			t.Errorf("2000 events hold no %s: %v", typ, kinds)
		}
	}
}

func TestGeneratorGrows(t *testing.T) {
	g := NewGenerator(DefaultFleetConfig, nil)
	g.Grow = true
	before := g.Size()
	for range before*2 + 500 {
		g.Next()
	}
	if g.Size() < before+200 {
		t.Fatalf("fleet grew from %d to %d only", before, g.Size())
	}
}
