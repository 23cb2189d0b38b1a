package simulate

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
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

// Connections fail with this probability (in percent)...
const failurePercent = 2

// ...and set up within this range, in milliseconds, when they do not.
const minSetupMs, maxSetupMs = 200, 3000

// AppGenerator produces the application webhooks (channel, client and
// connection events) of a plausible life: channels activate, clients
// register and join them, open connections that initialize, connect within
// 0.2–3 s (or, about 2% of them, fail), report stats, close; clients leave
// and unregister; a channel deactivates when its last client left. Events
// are stamped from the clock; an event is given out once its time has come
// or, when MaxSessions sessions are in progress, at once (a few seconds
// early).
type AppGenerator struct {
	rng      *rand.Rand
	now      func() time.Time
	cfg      AppConfig
	apps     []*simApp
	due      eventHeap
	seq      uint64
	sessions int
}

type simApp struct {
	id       string
	channels []*simChannel
}

type simChannel struct {
	id      string
	members int
	active  bool
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
	g := &AppGenerator{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)), now: now, cfg: cfg}
	for _, id := range cfg.IDs {
		g.apps = append(g.apps, &simApp{id: id})
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
	return s.ev
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
	c := &simChannel{id: "channel-" + g.guid()[:8], active: true}
	app.channels = append(app.channels, c)
	g.schedule(at, app.event("channel.activated", channelObj(app, c)), nil)
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
	g.schedule(at+5, app.event("client.registered", map[string]any{"client": cl}), nil)
	g.schedule(at+20, app.joinedOrLeft("joined", cl, ch), nil)
	g.schedule(at+40, app.event("client.updated", map[string]any{"client": cl}), nil)
	end := at + 20
	for range 1 + g.rng.IntN(2) {
		end = max(end, g.connection(app, ch, cl, at+50+int64(g.rng.IntN(100))))
	}
	g.schedule(end+100, app.event("client.stats", map[string]any{"client": cl}), nil)
	g.schedule(end+200, app.joinedOrLeft("left", cl, ch), func() { g.leave(app, ch, end+210) })
	g.schedule(end+250, app.event("client.unregistered", map[string]any{"client": cl}), func() { g.sessions-- })
}

// leave takes a client out of ch; the last one out deactivates it.
func (g *AppGenerator) leave(app *simApp, ch *simChannel, at int64) {
	if ch.members--; ch.members == 0 {
		ch.active = false
		g.schedule(at, app.event("channel.deactivated", channelObj(app, ch)), nil)
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
		g.schedule(t0+setup, c.event("failed", 0), nil)
		return t0 + setup
	}
	up := t0 + setup
	g.schedule(up, c.event("connected", setup), nil)
	g.schedule(up+500, c.event("updated", 0), nil)
	g.schedule(up+1000, c.event("stats", 0), nil)
	closing := up + 2000 + int64(g.rng.IntN(6000))
	g.schedule(closing, c.event("closing", 0), nil)
	g.schedule(closing+50, c.event("closed", 0), nil)
	return closing + 50
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
