package simulate

import (
	"time"
)

// The healthy scenario's timings, on the generator's clock.
const (
	// incidentEvery is the mean time between two incidents of one server:
	// a default fleet of 30 servers has one every minute and a half.
	incidentEvery = 45 * time.Minute
	// A restart keeps a server down for restartMin to restartMin+restartSpread;
	// a flap keeps it unregistered for flapMin to flapMin+flapSpread; a
	// shutdown keeps it stopped for shutdownMin to shutdownMin+shutdownSpread,
	// under the 5 and 10 minutes of the unregistered and stopped alerts.
	restartMin, restartSpread   = 5 * time.Second, 25 * time.Second
	flapMin, flapSpread         = 2 * time.Second, 18 * time.Second
	shutdownMin, shutdownSpread = time.Minute, 3 * time.Minute
)

// healthyStep is one step of the healthy scenario: what is due now (an
// incident or its end) if anything is, else a heartbeat.
func (g *Generator) healthyStep() {
	now := g.now()
	var next *server
	for _, s := range g.servers {
		if s.then == nil { // booted before the scenario's clock started
			g.nextIncident(s, now)
		}
		if !s.due.After(now) && (next == nil || s.due.Before(next.due)) {
			next = s
		}
	}
	if next == nil {
		g.heartbeat()
		return
	}
	then := next.then
	next.then = nil
	then(next)
}

// heartbeat emits the stats of a random server that is up.
func (g *Generator) heartbeat() {
	for range len(g.servers) {
		if s := g.servers[g.rng.IntN(len(g.servers))]; s.up {
			g.emit(s, "stats")
			return
		}
	}
	g.emit(g.servers[g.rng.IntN(len(g.servers))], "stats") // all down: ignored
}

// nextIncident has an incident befall s after a random time of mean
// incidentEvery from now (exponentially distributed: incidents are independent).
func (g *Generator) nextIncident(s *server, now time.Time) {
	s.due = now.Add(time.Duration(g.rng.ExpFloat64() * float64(incidentEvery)))
	s.then = g.incident
}

// incident befalls s: half the time a restart, a third of the time (for a
// server that registers) a registration flap, else a shutdown; each ends
// after a while with the server back.
func (g *Generator) incident(s *server) {
	now := g.now()
	switch p := g.rng.IntN(100); {
	case p < 50 || (p < 80 && !s.registers):
		g.shutdown(s)
		g.recover(s, now, restartMin, restartSpread, g.boot)
	case p < 80:
		g.emit(s, "unregistered")
		g.recover(s, now, flapMin, flapSpread, func(s *server) { g.emit(s, "registered") })
	default:
		g.shutdown(s)
		g.recover(s, now, shutdownMin, shutdownSpread, g.boot)
	}
}

// recover has end act on s between least and least+spread from now, and
// then schedules its next incident.
func (g *Generator) recover(s *server, now time.Time, least, spread time.Duration, end func(*server)) {
	s.due = now.Add(least + time.Duration(g.rng.Int64N(int64(spread))))
	s.then = func(s *server) {
		end(s)
		g.nextIncident(s, g.now())
	}
}
