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
// application: what an exporter fed them must count. Setup times are
// those of the connections whose initializing and connected were both
// acknowledged, in that order.
type AppTally struct {
	// Events counts acknowledged events by application and type.
	Events map[string]map[string]int
	// Failures counts acknowledged connection.failed events by
	// application and connection type.
	Failures map[string]map[string]int
	// Setups are the setup times of each application's connections.
	Setups map[string][]time.Duration
	// initialized are the connections whose initializing was acknowledged
	// and whose connected has not been yet; the events of an application
	// all go through one sender, so a sender's tally sees both.
	initialized map[string]bool
}

func newAppTally() *AppTally {
	return &AppTally{Events: map[string]map[string]int{}, Failures: map[string]map[string]int{},
		Setups: map[string][]time.Duration{}, initialized: map[string]bool{}}
}

// acked counts ev, acknowledged by the target.
func (t *AppTally) acked(ev *Event) {
	a := ev.app
	if a == nil {
		return
	}
	add(t.Events, a.app, a.typ, 1)
	key := a.app + "/" + a.conn
	switch a.typ {
	case "connection.initializing":
		t.initialized[key] = true
	case "connection.connected":
		if t.initialized[key] {
			t.Setups[a.app] = append(t.Setups[a.app], time.Duration(a.setupMs)*time.Millisecond)
		}
		delete(t.initialized, key)
	case "connection.failed":
		add(t.Failures, a.app, a.connType, 1)
		delete(t.initialized, key)
	case "connection.closed":
		delete(t.initialized, key)
	}
}

func add(m map[string]map[string]int, k1, k2 string, n int) {
	if m[k1] == nil {
		m[k1] = map[string]int{}
	}
	m[k1][k2] += n
}

// merge adds the counts of o.
func (t *AppTally) merge(o *AppTally) {
	for _, pair := range [][2]map[string]map[string]int{{t.Events, o.Events}, {t.Failures, o.Failures}} {
		for k1, m := range pair[1] {
			for k2, n := range m {
				add(pair[0], k1, k2, n)
			}
		}
	}
	for app, s := range o.Setups {
		t.Setups[app] = append(t.Setups[app], s...)
	}
}

// SetupQuantile returns the q-quantile (0..1) of app's setup times, by
// nearest rank, and whether there is any.
func (t *AppTally) SetupQuantile(app string, q float64) (time.Duration, bool) {
	s := slices.Sorted(slices.Values(t.Setups[app]))
	if len(s) == 0 {
		return 0, false
	}
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)], true
}

// Write prints three lines per application, for people and for tests:
//
//	application APP events TYPE=N ...
//	application APP failures CONNECTION_TYPE=N ...
//	application APP setup count=N sum=S p50=D p95=D
func (t *AppTally) Write(w io.Writer) {
	if t == nil {
		return
	}
	for _, app := range slices.Sorted(maps.Keys(t.Events)) {
		fmt.Fprintf(w, "application %s events%s\n", app, pairs(t.Events[app]))
		fmt.Fprintf(w, "application %s failures%s\n", app, pairs(t.Failures[app]))
		var sum time.Duration
		for _, d := range t.Setups[app] {
			sum += d
		}
		p50, _ := t.SetupQuantile(app, 0.5)
		p95, _ := t.SetupQuantile(app, 0.95)
		fmt.Fprintf(w, "application %s setup count=%d sum=%.3fs p50=%.3fs p95=%.3fs\n",
			app, len(t.Setups[app]), sum.Seconds(), p50.Seconds(), p95.Seconds())
	}
}

func pairs(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}
