package simulate

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// AppConfig shapes the simulated applications.
type AppConfig struct {
	Seed uint64
	// IDs are the applications' ids (ApplicationIDs(1) when empty): give the
	// simulated Gateway the same (GatewayConfig.Applications).
	IDs []string
	// MaxSessions bounds the sessions (a client in a channel) in progress
	// at once; DefaultMaxSessions when 0.
	MaxSessions int
}

// DefaultMaxSessions is how many sessions the applications hold at once.
const DefaultMaxSessions = 200

// Connections fail during their setup with this probability (in
// percent)...
const failurePercent = 2

// ...and set up within this range, in milliseconds, when they do not...
const minSetupMs, maxSetupMs = 200, 3000

// ...then stay up for this long (closing then closed 50 ms later)...
const minUpMs, maxUpMs = 2000, 8000

// ...unless they fail once connected, with this probability (per
// thousand).
const droppedPerMille = 10

// failureSamples are the errors failed connections carry, each with the
// cause the exporter's documented mapping gives it: the shapes LiveSwitch
// may send (an object with a code and a message, a bare string, nothing).
var failureSamples = []struct {
	cause string
	err   any // nil: no error member
}{
	{"ice", map[string]any{"code": "IceFailed", "message": "ICE negotiation failed"}},
	{"ice", "ICEConnectionFailed"},
	{"dtls", "DTLS handshake failed"},
	{"dtls", map[string]any{"code": "DtlsHandshakeFailed"}},
	{"timeout", map[string]any{"code": "Timeout", "message": "Connection timed out"}},
	{"media", map[string]any{"message": "Media server unavailable"}},
	{"other", map[string]any{"code": "Unexpected", "message": "Remote peer hung up"}},
	{"unknown", nil},
}

// AppGenerator produces the application webhooks (channel, client and
// connection events) of a plausible life, with known distributions:
// channels activate, clients register and join them (70% an active
// channel, else a new one), open one or two connections that initialize,
// connect within 0.2–3 s, uniformly (or, 2% of them, fail), stay up 2–8 s,
// uniformly, and close (or, 1% of those, fail); clients leave and
// unregister; a channel deactivates when its last client left. Failures
// carry the errors of failureSamples in turn. Events are stamped from the
// clock; an event is given out once its time has come or, when MaxSessions
// sessions are in progress, at once (a few seconds early). Live counts what
// the events given out left active, as the Gateway counts it.
type AppGenerator struct {
	rng      *rand.Rand
	now      func() time.Time
	cfg      AppConfig
	apps     []*simApp
	due      eventHeap
	seq      uint64
	sessions int
	failures int // failures so far, to pick their errors in turn

	mu   sync.Mutex
	live map[string]*Levels
}

// Levels are what an application has active: channels activated and not
// deactivated, clients registered and not unregistered, connections
// initializing or connected and not closed or failed.
type Levels struct{ Channels, Clients, Connections int }

type simApp struct {
	id       string
	channels []*simChannel
}

type simChannel struct {
	id      string
	members int
	active  bool
	// startMs is when it activated.
	startMs int64
}

// NewAppGenerator builds the applications of cfg; now stamps the events
// (time.Now when nil).
func NewAppGenerator(cfg AppConfig, now func() time.Time) *AppGenerator {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if len(cfg.IDs) == 0 {
		cfg.IDs = ApplicationIDs(1)
	}
	g := &AppGenerator{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)), now: now, cfg: cfg, live: map[string]*Levels{}}
	for _, id := range cfg.IDs {
		g.apps = append(g.apps, &simApp{id: id})
		g.live[id] = &Levels{}
	}
	return g
}

// Next returns the next application event.
func (g *AppGenerator) Next() Event {
	for len(g.due) == 0 || (g.due[0].ms > g.now().UnixMilli() && g.sessions < g.cfg.MaxSessions) {
		g.startSession()
	}
	s := heap.Pop(&g.due).(*scheduled)
	if s.then != nil {
		s.then()
	}
	g.count(s.ev.app)
	return s.ev
}

// count moves the live levels by an event given out.
func (g *AppGenerator) count(a *appEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lv := g.live[a.app]
	switch a.typ {
	case "channel.activated":
		lv.Channels++
	case "channel.deactivated":
		lv.Channels--
	case "client.registered":
		lv.Clients++
	case "client.unregistered":
		lv.Clients--
	case "connection.initializing":
		lv.Connections++
	case "connection.closed", "connection.failed":
		lv.Connections--
	}
}

// Live returns what application id has active, as the events given out so
// far left it: what the simulated Gateway answers for it
// (GatewayConfig.Live), and what an exporter that took every one of those
// events shows.
func (g *AppGenerator) Live(id string) (Levels, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lv, ok := g.live[id]
	if !ok {
		return Levels{}, false
	}
	return *lv, true
}

// guid returns a random id shaped like LiveSwitch's.
func (g *AppGenerator) guid() string {
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", g.rng.Uint32(), g.rng.Uint32()&0xffff, g.rng.Uint32()&0xfff,
		g.rng.Uint32()&0xfff, g.rng.Uint64()&0xffffffffffff)
}

// channel returns an active channel of app for a new session, activating
// a new one now and then.
func (g *AppGenerator) channel(app *simApp, at int64) *simChannel {
	active := app.channels[:0]
	for _, c := range app.channels {
		if c.active {
			active = append(active, c)
		}
	}
	app.channels = active
	if len(active) > 0 && g.rng.IntN(100) < 70 {
		return active[g.rng.IntN(len(active))]
	}
	c := &simChannel{id: "channel-" + g.guid()[:8], active: true, startMs: at}
	app.channels = append(app.channels, c)
	g.schedule(at, app.channelEvent("activated", c), nil)
	return c
}

// startSession schedules the life of one client in one channel of a random
// application, from now on.
func (g *AppGenerator) startSession() {
	app := g.apps[g.rng.IntN(len(g.apps))]
	at := g.now().UnixMilli()
	ch := g.channel(app, at)
	ch.members++
	g.sessions++
	cl := g.client(app)
	g.schedule(at+5, app.clientEvent("client.registered", cl), nil)
	g.schedule(at+20, app.joinedOrLeft("joined", cl, ch), nil)
	g.schedule(at+40, app.clientEvent("client.updated", cl), nil)
	end := at + 20
	for range 1 + g.rng.IntN(2) {
		end = max(end, g.connection(app, ch, cl, at+50+int64(g.rng.IntN(100))))
	}
	g.schedule(end+100, app.clientEvent("client.stats", cl), nil)
	g.schedule(end+200, app.joinedOrLeft("left", cl, ch), func() { g.leave(app, ch, end+210) })
	g.schedule(end+250, app.clientEvent("client.unregistered", cl), func() { g.sessions-- })
}

// leave takes a client out of ch; the last one out deactivates it.
func (g *AppGenerator) leave(app *simApp, ch *simChannel, at int64) {
	if ch.members--; ch.members == 0 {
		ch.active = false
		ev := app.channelEvent("deactivated", ch)
		ev.app.spanMs = at - ch.startMs
		g.schedule(at, ev, nil)
	}
}

// connection schedules one connection of cl from its initializing at t0,
// and returns when it ends.
func (g *AppGenerator) connection(app *simApp, ch *simChannel, cl map[string]any, t0 int64) int64 {
	c := &simConnection{id: g.guid(), typ: []string{"sfu", "sfu", "sfu", "mcu", "peer"}[g.rng.IntN(5)],
		app: app, channel: ch, client: cl, media: "media-" + g.guid()[:8]}
	setup := int64(minSetupMs + g.rng.IntN(maxSetupMs-minSetupMs+1))
	g.schedule(t0, c.event("initializing", 0), nil)
	g.schedule(t0+setup/3, c.event("connecting", 0), nil)
	if g.rng.IntN(100) < failurePercent {
		g.schedule(t0+setup*4/5, c.event("failing", 0), nil)
		g.schedule(t0+setup, g.failure(c, -1), nil)
		return t0 + setup
	}
	up := t0 + setup
	g.schedule(up, c.event("connected", setup), nil)
	g.schedule(up+500, c.event("updated", 0), nil)
	g.schedule(up+1000, c.event("stats", 0), nil)
	life := int64(minUpMs + g.rng.IntN(maxUpMs-minUpMs+1))
	if g.rng.IntN(1000) < droppedPerMille {
		g.schedule(up+life-100, c.event("failing", 0), nil)
		g.schedule(up+life, g.failure(c, life), nil)
		return up + life
	}
	g.schedule(up+life, c.event("closing", 0), nil)
	closed := c.event("closed", 0)
	closed.app.upMs = life + 50
	g.schedule(up+life+50, closed, nil)
	return up + life + 50
}

// failure is c's connection.failed, after upMs connected (-1: in its
// setup), with the next of failureSamples' errors.
func (g *AppGenerator) failure(c *simConnection, upMs int64) Event {
	sample := failureSamples[g.failures%len(failureSamples)]
	g.failures++
	ev := c.event("failed", 0)
	if sample.err != nil {
		ev.app.objects["connection"].(map[string]any)["error"] = sample.err
	}
	ev.app.cause, ev.app.upMs = sample.cause, upMs
	return ev
}

// client returns a new client of app, described as LiveSwitch does, in
// either of the shapes its documentation and its SDK show.
func (g *AppGenerator) client(app *simApp) map[string]any {
	n := g.rng.IntN(1000)
	cl := map[string]any{
		"id": g.guid(), "applicationId": app.id, "version": "1.24.2", "userId": fmt.Sprintf("user-%d", n),
		"deviceId": fmt.Sprintf("device-%d", n), "region": []string{"us-east", "eu-west", "ap-south"}[n%3],
		"roles": []string{"participant"}, "machineName": fmt.Sprintf("PC-%d", n), "coreCount": 8,
		"operatingSystem": "windows", "operatingSystemVersion": "10.0", "architecture": "x64",
	}
	if n%2 == 0 {
		cl["physicalMemory"], cl["clientTag"] = "17179869184", "web" // the docs' sample
	} else {
		cl["physicalMemory"], cl["tag"] = 17179869184, "web" // the SDK's
	}
	return cl
}

// schedule has ev given out at ms, and then called when it is.
func (g *AppGenerator) schedule(ms int64, ev Event, then func()) {
	g.seq++
	heap.Push(&g.due, &scheduled{ms: ms, seq: g.seq, ev: ev.stamped(ms), then: then})
}

// scheduled is an event waiting for its time.
type scheduled struct {
	ms   int64
	seq  uint64
	ev   Event
	then func()
}

// eventHeap orders scheduled events by time, then by scheduling.
type eventHeap []*scheduled

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].ms < h[j].ms || (h[i].ms == h[j].ms && h[i].seq < h[j].seq)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*scheduled)) }
func (h *eventHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
