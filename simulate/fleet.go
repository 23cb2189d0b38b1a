// Package simulate generates the server webhooks of a realistic LiveSwitch
// fleet and posts them to an exporter: the demo, the data behind the bundled
// dashboards, and the load generator of the benchmarks.
package simulate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// FleetConfig shapes the simulated fleet.
type FleetConfig struct {
	Seed        uint64
	Deployments int
	Regions     []string
	// MediaServers is the number of media servers per deployment and region.
	MediaServers int
	// Gateways and SIPConnectors are per deployment.
	Gateways      int
	SIPConnectors int
	// Recording adds one recording monitor, mover and muxer per deployment.
	Recording bool
	// Scenario is the life the fleet lives once booted; the zero value is
	// Stormy.
	Scenario Scenario
}

// Scenario is the life a simulated fleet lives.
type Scenario string

const (
	// Stormy is a load test's life: every step is as likely to be a
	// restart, a flap or a shutdown as a heartbeat, whatever the clock
	// says, so each server loses its registration several times a minute
	// at 20 events/s. The generator's life since its start, which tests
	// and load tests rely on: the zero Scenario.
	Stormy Scenario = "stormy"
	// Healthy is a production fleet's: heartbeats, and, by the clock, an
	// incident every incidentEvery per server on average (a restart, a
	// registration flap, or a shutdown for a few minutes), after which the
	// server comes back. The command's default, for demos.
	Healthy Scenario = "healthy"
)

// Scenarios are the names --scenario accepts.
var Scenarios = []Scenario{Healthy, Stormy}

// DefaultFleetConfig is a small production-like fleet: two deployments,
// three regions, two gateways each, and the recording pipeline.
var DefaultFleetConfig = FleetConfig{
	Seed: 1, Deployments: 2, Regions: []string{"us-east", "eu-west", "ap-south"},
	MediaServers: 3, Gateways: 2, SIPConnectors: 1, Recording: true,
}

// server is one simulated LiveSwitch server process.
type server struct {
	origin, id, machine, deployment, region, version string
	cores                                            int
	registers                                        bool // registers with a Gateway
	up, registered, everRegistered                   bool
	lastMs                                           int64
	// due is when the healthy scenario next acts on the server (an
	// incident, or its end), and then what it does.
	due  time.Time
	then func(*server)
}

// Event is one webhook, ready to post.
type Event struct {
	// Key is "<origin>/<id>": events with the same key must be delivered in
	// order, so senders partition by it.
	Key  string
	Body []byte
	// state is the server as the event leaves it, for the Pushgateway
	// rendering of the same event.
	state server
	ms    int64
	// queued is when the event was handed to a sender, from which its
	// retries are bounded.
	queued time.Time
	// app describes an application event; nil for a server event.
	app *appEvent
}

// Generator produces the event stream of a fleet: every server starts (and
// registers), then heartbeats and, as the scenario says, rolling restarts,
// flaps, clean shutdowns and returns follow one another at random. The
// stream is reproducible from the seed, apart from timestamps, which follow
// the clock (and, in the healthy scenario, when incidents happen).
type Generator struct {
	// mu guards the fleet against its Gateway's API, which reads it while
	// the senders draw events.
	mu      sync.Mutex
	rng     *rand.Rand
	servers []*server
	now     func() time.Time
	pending []Event
	booted  bool
	// next is the index of the next server to create when Grow is set.
	next int
	// Grow makes every step also start a brand-new server, so that the
	// fleet grows as under a load test of distinct servers.
	Grow bool
	cfg  FleetConfig
}

// NewGenerator builds the fleet of cfg. now stamps the events; nil means
// time.Now.
func NewGenerator(cfg FleetConfig, now func() time.Time) *Generator {
	if now == nil {
		now = time.Now
	}
	g := &Generator{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: now, cfg: cfg}
	for d := 0; d < cfg.Deployments; d++ {
		dep := fmt.Sprintf("deployment-%d", d+1)
		for i := 0; i < cfg.Gateways; i++ {
			g.add("gateway", dep, "", false)
		}
		for _, region := range cfg.Regions {
			for i := 0; i < cfg.MediaServers; i++ {
				g.add("mediaserver", dep, region, true)
			}
		}
		for i := 0; i < cfg.SIPConnectors; i++ {
			g.add("sipconnector", dep, cfg.Regions[i%len(cfg.Regions)], true)
		}
		if cfg.Recording {
			for _, origin := range []string{"recordingmonitor", "recordingmover", "recordingmuxer"} {
				g.add(origin, dep, cfg.Regions[0], true)
			}
		}
	}
	return g
}

// Size is the number of servers the fleet has now.
func (g *Generator) Size() int { return len(g.servers) }

func (g *Generator) add(origin, deployment, region string, registers bool) *server {
	g.next++
	s := &server{
		origin: origin, deployment: deployment, region: region, registers: registers,
		id:      fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", g.rng.Uint32(), g.rng.Uint32()&0xffff, g.next&0xfff, g.rng.Uint32()&0xfff, g.rng.Uint64()&0xffffffffffff),
		machine: fmt.Sprintf("%s-%s-%02d", shortName(origin), deployment, g.next),
		version: "1.24." + fmt.Sprint(g.rng.IntN(3)) + ".0",
		cores:   []int{4, 8, 16, 32}[g.rng.IntN(4)],
	}
	g.servers = append(g.servers, s)
	return s
}

func shortName(origin string) string {
	switch origin {
	case "mediaserver":
		return "ms"
	case "gateway":
		return "gw"
	case "sipconnector":
		return "sip"
	}
	return "rec"
}

// Next returns the next event of the fleet's life.
func (g *Generator) Next() Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.pending) == 0 {
		g.step()
	}
	ev := g.pending[0]
	g.pending = g.pending[1:]
	return ev
}

func (g *Generator) step() {
	if !g.booted {
		g.booted = true
		for _, s := range g.servers {
			g.boot(s)
		}
		return
	}
	if g.Grow {
		s := g.add(g.servers[g.rng.IntN(len(g.servers))].origin, "deployment-1", g.cfg.Regions[g.rng.IntN(len(g.cfg.Regions))], false)
		s.registers = s.origin != "gateway"
		g.boot(s)
		return
	}
	if g.cfg.Scenario == Healthy {
		g.healthyStep()
		return
	}
	s := g.servers[g.rng.IntN(len(g.servers))]
	switch p := g.rng.IntN(100); {
	case !s.up && p < 60:
		g.boot(s) // a stopped server comes back
	case !s.up:
		g.emit(s, "stats") // a heartbeat from a stopped server: ignored
	case p < 50:
		g.emit(s, "stats")
	case p < 75:
		g.shutdown(s)
		g.boot(s) // rolling restart
	case p < 85 && s.registered:
		g.emit(s, "unregistered") // flap
		g.emit(s, "registered")
	case p < 92:
		g.shutdown(s) // clean shutdown, returns later
	default:
		g.emit(s, "stats")
	}
}

func (g *Generator) boot(s *server) {
	g.emit(s, "started")
	if s.registers {
		g.emit(s, "registered")
	}
}

func (g *Generator) shutdown(s *server) {
	if s.registered {
		g.emit(s, "unregistered")
	}
	g.emit(s, "stopped")
}

func (g *Generator) emit(s *server, action string) {
	switch action {
	case "started":
		s.up, s.everRegistered = true, false
	case "stopped":
		s.up, s.registered = false, false
	case "registered":
		s.registered, s.everRegistered = true, true
	case "unregistered":
		s.registered = false
	}
	ms := max(g.now().UnixMilli(), s.lastMs+1)
	s.lastMs = ms
	g.pending = append(g.pending, Event{Key: s.origin + "/" + s.id, Body: s.payload(action, ms), state: *s, ms: ms})
}

func (s *server) payload(action string, ms int64) []byte {
	obj := map[string]any{
		"id": s.id, "version": s.version, "machineName": s.machine, "coreCount": s.cores,
		"operatingSystem": "linux", "operatingSystemVersion": "6.1.0", "architecture": "x64",
		"deploymentId": s.deployment, "networkInterfaces": []string{"eth0"},
		"publicIPAddresses": []string{"203.0.113.10"},
	}
	if s.origin != "gateway" {
		obj["region"] = s.region
	}
	if s.origin == "mediaserver" {
		obj["iceServerUris"] = []string{"stun:stun.example.com:3478"}
	}
	body, _ := json.Marshal(map[string]any{
		"timestamp": ms, "origin": s.origin, "type": s.origin + "." + action, s.origin: obj,
	})
	return body
}
