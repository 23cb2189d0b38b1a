package exporter

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDeliveryLogBounds sends a seeded random sequence of deliveries of
// every class and checks the log against a model: each class keeps its own
// last deliveries (a flood of one never pushes another out), the counts
// since the start are exact, and Recent is every kept delivery, newest
// first.
func TestDeliveryLogBounds(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			log := NewDeliveryLog()
			var model [numClasses][]Delivery // every delivery, oldest first
			statuses := []int{204, 204, 204, 204, 202, 400, 401, 503}
			at := time.UnixMilli(t0)
			for i := range 2000 {
				at = at.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				d := Delivery{Time: at, Status: statuses[rng.IntN(len(statuses))], Reason: fmt.Sprint(i)}
				d.Accepted = d.Status/100 == 2
				if rng.IntN(10) == 0 { // a burst of one class
					for range 300 {
						log.add(d)
						model[ClassOf(d.Status)] = append(model[ClassOf(d.Status)], d)
					}
					continue
				}
				log.add(d)
				model[ClassOf(d.Status)] = append(model[ClassOf(d.Status)], d)
			}
			h := log.History(1 << 20)
			total := 0
			for c := range numClasses {
				want := model[c][max(0, len(model[c])-kept[c]):]
				got := h.Last[c]
				if len(got) != len(want) || h.Totals[c] != uint64(len(model[c])) {
					t.Fatalf("%v: %d kept of %d, want %d of %d", c, len(got), h.Totals[c], len(want), len(model[c]))
				}
				for i := range got {
					if got[i] != want[len(want)-1-i] {
						t.Fatalf("%v: kept %d is %+v, want %+v", c, i, got[i], want[len(want)-1-i])
					}
				}
				total += len(got)
			}
			recent := log.Recent()
			if len(recent) != total {
				t.Fatalf("Recent has %d deliveries, want %d", len(recent), total)
			}
			for i := 1; i < len(recent); i++ {
				if recent[i].Time.After(recent[i-1].Time) {
					t.Fatalf("Recent is not newest first at %d", i)
				}
			}
		})
	}
}

// BenchmarkDeliveryLogAdd is what the log costs an applied delivery.
func BenchmarkDeliveryLogAdd(b *testing.B) {
	log := NewDeliveryLog()
	d := Delivery{Time: time.UnixMilli(t0), Remote: "192.0.2.1:1234", Status: 204, Accepted: true, Outcome: "applied"}
	b.ReportAllocs()
	for b.Loop() {
		log.add(d)
	}
}
