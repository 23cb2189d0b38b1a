package simulate

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// AppTally counts the application events the target acknowledged, per
// application: what an exporter fed them must count. A time is counted
// when both of its ends were acknowledged, in that order: setup times
// (initializing → connected), connection durations (connected → closed
// or failed), channel durations (activated → deactivated, with the most
// clients the channel had at once by its acknowledged joins and leaves).
type AppTally struct {
	// Events counts acknowledged events by application and type.
	Events map[string]map[string]int
	// Failures counts acknowledged connection.failed events by
	// application and connection type; Causes by the cause of their
	// error; Phases by how far the connection had come by the events
	// acknowledged before it (setup, established, unknown).
	Failures, Causes, Phases map[string]map[string]int
	// Setups are the setup times of each application's connections.
	Setups map[string][]time.Duration
	// Durations are the times connections stayed connected, by
	// application and connection type.
	Durations map[string]map[string][]time.Duration
	// Channels are the channels' durations, and Peaks their most clients
	// at once, by application.
	Channels map[string][]time.Duration
	Peaks    map[string][]int
	// initialized and connected are the connections whose initializing,
	// or connected, was acknowledged and whose end has not been; open the
	// channels whose activation was, with their clients now and at most;
	// active the channels, clients and connections held. The events of an
	// application all go through one sender, so a sender's tally sees
	// both ends.
	initialized, connected map[string]bool
	open                   map[string]*[2]int
	active                 map[string]map[string]bool
}

func newAppTally() *AppTally {
	m := func() map[string]map[string]int { return map[string]map[string]int{} }
	return &AppTally{Events: m(), Failures: m(), Causes: m(), Phases: m(),
		Setups: map[string][]time.Duration{}, Durations: map[string]map[string][]time.Duration{},
		Channels: map[string][]time.Duration{}, Peaks: map[string][]int{},
		initialized: map[string]bool{}, connected: map[string]bool{}, open: map[string]*[2]int{}, active: map[string]map[string]bool{}}
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// acked counts ev, acknowledged by the target.
func (t *AppTally) acked(ev *Event) {
	a := ev.app
	if a == nil {
		return
	}
	add(t.Events, a.app, a.typ, 1)
	conn, channel := a.app+"/"+a.conn, a.app+"/"+a.channel
	switch a.typ {
	case "connection.initializing":
		t.initialized[conn] = true
		t.hold(a.app, "connection "+a.conn, true)
	case "connection.connected":
		if t.initialized[conn] {
			t.Setups[a.app] = append(t.Setups[a.app], ms(a.setupMs))
		}
		t.connected[conn] = true
		t.hold(a.app, "connection "+a.conn, true)
	case "connection.failed", "connection.closed":
		if t.connected[conn] && a.upMs >= 0 {
			if t.Durations[a.app] == nil {
				t.Durations[a.app] = map[string][]time.Duration{}
			}
			t.Durations[a.app][a.connType] = append(t.Durations[a.app][a.connType], ms(a.upMs))
		}
		if a.typ == "connection.failed" {
			add(t.Failures, a.app, a.connType, 1)
			add(t.Causes, a.app, a.cause, 1)
			phase := "unknown"
			switch {
			case t.connected[conn]:
				phase = "established"
			case t.initialized[conn]:
				phase = "setup"
			}
			add(t.Phases, a.app, phase, 1)
		}
		delete(t.initialized, conn)
		delete(t.connected, conn)
		t.hold(a.app, "connection "+a.conn, false)
	case "channel.activated":
		t.open[channel] = &[2]int{}
		t.hold(a.app, "channel "+a.channel, true)
	case "channel.client.joined":
		if c := t.open[channel]; c != nil {
			c[0]++
			c[1] = max(c[1], c[0])
		}
	case "channel.client.left":
		if c := t.open[channel]; c != nil && c[0] > 0 {
			c[0]--
		}
	case "channel.deactivated":
		if c := t.open[channel]; c != nil {
			t.Channels[a.app] = append(t.Channels[a.app], ms(a.spanMs))
			t.Peaks[a.app] = append(t.Peaks[a.app], c[1])
		}
		delete(t.open, channel)
		t.hold(a.app, "channel "+a.channel, false)
	case "client.registered":
		t.hold(a.app, "client "+a.client, true)
	case "client.unregistered":
		t.hold(a.app, "client "+a.client, false)
	}
}

// hold notes that app holds (or no longer holds) what.
func (t *AppTally) hold(app, what string, held bool) {
	if t.active[app] == nil {
		t.active[app] = map[string]bool{}
	}
	if held {
		t.active[app][what] = true
	} else {
		delete(t.active[app], what)
	}
}

// Live is what app had active by the acknowledged events: what the
// exporter's live levels show, and the simulated Gateway counts once every
// event given out was acknowledged.
func (t *AppTally) Live(app string) Levels {
	var lv Levels
	for what := range t.active[app] {
		switch {
		case strings.HasPrefix(what, "channel "):
			lv.Channels++
		case strings.HasPrefix(what, "client "):
			lv.Clients++
		default:
			lv.Connections++
		}
	}
	return lv
}

func add(m map[string]map[string]int, k1, k2 string, n int) {
	if m[k1] == nil {
		m[k1] = map[string]int{}
	}
	m[k1][k2] += n
}

// merge adds the counts of o, a tally of other applications (each
// application's events go through one sender).
func (t *AppTally) merge(o *AppTally) {
	for _, pair := range [][2]map[string]map[string]int{{t.Events, o.Events}, {t.Failures, o.Failures}, {t.Causes, o.Causes}, {t.Phases, o.Phases}} {
		for k1, m := range pair[1] {
			for k2, n := range m {
				add(pair[0], k1, k2, n)
			}
		}
	}
	for app, s := range o.Setups {
		t.Setups[app] = append(t.Setups[app], s...)
	}
	for app, byType := range o.Durations {
		if t.Durations[app] == nil {
			t.Durations[app] = map[string][]time.Duration{}
		}
		for typ, d := range byType {
			t.Durations[app][typ] = append(t.Durations[app][typ], d...)
		}
	}
	for app, d := range o.Channels {
		t.Channels[app] = append(t.Channels[app], d...)
	}
	for app, p := range o.Peaks {
		t.Peaks[app] = append(t.Peaks[app], p...)
	}
	for app, held := range o.active {
		for what := range held {
			t.hold(app, what, true)
		}
	}
}

// quantile returns the q-quantile (0..1) of values, by nearest rank, and
// whether there is any.
func quantile[T int | time.Duration](values []T, q float64) (T, bool) {
	s := slices.Sorted(slices.Values(values))
	if len(s) == 0 {
		return 0, false
	}
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)], true
}

// SetupQuantile returns the q-quantile (0..1) of app's setup times, by
// nearest rank, and whether there is any.
func (t *AppTally) SetupQuantile(app string, q float64) (time.Duration, bool) {
	return quantile(t.Setups[app], q)
}

// Write prints lines per application, for people and for tests:
//
//	application APP events TYPE=N ...
//	application APP failures CONNECTION_TYPE=N ...
//	application APP failure_causes CAUSE=N ...
//	application APP failure_phases PHASE=N ...
//	application APP setup count=N sum=S p50=D p95=D
//	application APP connection_duration:TYPE count=N sum=S p50=D p95=D
//	application APP channel_duration count=N sum=S p50=D p95=D
//	application APP channel_peak count=N sum=N p50=N p95=N
//	application APP live channels=N clients=N connections=N
func (t *AppTally) Write(w io.Writer) {
	if t == nil {
		return
	}
	for _, app := range slices.Sorted(maps.Keys(t.Events)) {
		fmt.Fprintf(w, "application %s events%s\n", app, pairs(t.Events[app]))
		fmt.Fprintf(w, "application %s failures%s\n", app, pairs(t.Failures[app]))
		fmt.Fprintf(w, "application %s failure_causes%s\n", app, pairs(t.Causes[app]))
		fmt.Fprintf(w, "application %s failure_phases%s\n", app, pairs(t.Phases[app]))
		writeTimes(w, app, "setup", t.Setups[app])
		for _, typ := range slices.Sorted(maps.Keys(t.Durations[app])) {
			writeTimes(w, app, "connection_duration:"+typ, t.Durations[app][typ])
		}
		writeTimes(w, app, "channel_duration", t.Channels[app])
		peaks := t.Peaks[app]
		sum := 0
		for _, p := range peaks {
			sum += p
		}
		p50, _ := quantile(peaks, 0.5)
		p95, _ := quantile(peaks, 0.95)
		fmt.Fprintf(w, "application %s channel_peak count=%d sum=%d p50=%d p95=%d\n", app, len(peaks), sum, p50, p95)
		lv := t.Live(app)
		fmt.Fprintf(w, "application %s live channels=%d clients=%d connections=%d\n", app, lv.Channels, lv.Clients, lv.Connections)
	}
}

// writeTimes prints the count, sum and quantiles of durations.
func writeTimes(w io.Writer, app, what string, durations []time.Duration) {
	var sum time.Duration
	for _, d := range durations {
		sum += d
	}
	p50, _ := quantile(durations, 0.5)
	p95, _ := quantile(durations, 0.95)
	fmt.Fprintf(w, "application %s %s count=%d sum=%.3fs p50=%.3fs p95=%.3fs\n", app, what, len(durations), sum.Seconds(), p50.Seconds(), p95.Seconds())
}

func pairs(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}
