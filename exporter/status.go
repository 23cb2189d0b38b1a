package exporter

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": ago,
	"utc": func(t Time) string {
		if t == 0 {
			return ""
		}
		return t.Time().Format(time.RFC3339)
	},
	"date": func(t time.Time) string { return t.UTC().Format(fullDate) },
}).Parse(statusHTML))

// fullDate is how the page writes a time in full (in a title, where a
// relative age is shown).
const fullDate = "2006-01-02 15:04:05.000 UTC"

// Bounds of the status page, which must stay light on a phone and for a
// fleet of thousands: the API has everything.
const (
	maxPageServers    = 500
	maxPageDeliveries = 20 // of each class
	pageRefresh       = 10 // seconds
)

// StatusPageConfig is what the status page shows besides the fleet.
type StatusPageConfig struct {
	Name, Version string
	Links         []Link
	Fleet         FleetReader
	Deliveries    *DeliveryLog
	// Gateway is this exporter's poller of the Gateway's REST API, nil
	// when the API is off.
	Gateway GatewayPolls
	// Applications counts the application webhooks; nil when they are not
	// counted.
	Applications ApplicationReader
	Ready        func() bool
	Now          func() time.Time
	Logger       *slog.Logger
}

// Link is one of the page's links to the exporter's other endpoints.
type Link struct{ Address, Text string }

// statusData is what the template renders: the page's model, which the
// tests check section by section.
type statusData struct {
	StatusPageConfig
	Generated    time.Time
	IsReady      bool
	States       []stateName
	Counts       []originCounts
	Attention    int
	Groups       []serverGroup
	Shown, Total int
	Gateway      gatewayLine
	Apps         appsSection
	Webhooks     deliveriesSection
	Refresh      int
}

// stateName is a state as the counts' header names it: in full, and short
// for a phone.
type stateName struct{ Name, Short string }

var shortStates = map[string]string{"running": "run", "registered": "reg", "unregistered": "unreg", "stopped": "stop"}

type originCounts struct {
	Origin  string
	ByState []int
	Total   int
}

type serverGroup struct {
	Deployment, Region string
	Attention          int
	Rows               []serverRow
}

type serverRow struct {
	ServerJSON
	// Attention marks a media server that is up but not registered: it
	// takes no sessions, which is what the paging alert watches.
	Attention bool
	InState   time.Duration
	// Gateway is what the Gateway's REST API said of a media server; nil
	// for other origins and when the API is off.
	Gateway *serverGateway
}

// StatusPage serves the human view of the exporter at /: the fleet with the
// media servers that need attention first, what the Gateway's REST API
// says, the applications, and the webhook deliveries. It is rendered on
// the server, refreshes itself, and needs no JavaScript.
func StatusPage(cfg StatusPageConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		if err := statusTemplate.Execute(&buf, buildStatus(cfg)); err != nil {
			cfg.Logger.Error("Rendering the status page failed", "err", err)
			http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = buf.WriteTo(w)
	})
}

func needsAttention(s *fleet.Server) bool {
	return s.Origin == mediaServerOrigin && (s.State == fleet.StateRunning || s.State == fleet.StateUnregistered)
}

func buildStatus(cfg StatusPageConfig) *statusData {
	now := cfg.Now()
	snap := cfg.Fleet.Snapshot()
	d := &statusData{StatusPageConfig: cfg, Generated: now.UTC(), IsReady: cfg.Ready(),
		Total: len(snap.Servers), Refresh: pageRefresh}
	for _, st := range fleet.States() {
		name := st.String()
		d.States = append(d.States, stateName{name, cmp.Or(shortStates[name], name)})
	}
	d.Counts = countByOrigin(snap.Servers, len(d.States))
	d.Gateway = buildGateway(&snap, cfg.Gateway, now)
	var view *fleet.GatewayView
	if d.Gateway.On {
		view = snap.Gateway
	}
	d.Groups = groupServers(snap.Servers, view, now)
	for _, g := range d.Groups {
		d.Attention += g.Attention
	}
	d.Groups, d.Shown = limitRows(d.Groups, maxPageServers)
	d.Apps = buildApps(cfg.Applications, view, d.Gateway.On)
	d.Webhooks = buildDeliveries(cfg.Deliveries.History(maxPageDeliveries), now)
	return d
}

// deliveriesSection is what the page says of the webhook deliveries.
type deliveriesSection struct {
	// Counts are the counts since the start, by status and outcome.
	Counts []countRow
	// Totals count the deliveries of each class since the start.
	Applied, NotApplied, Rejected uint64
	// LastRejectedAt is when the last rejection came (when Rejected > 0),
	// LastRejected its age; RecentRejection: within recentRejection.
	LastRejectedAt  time.Time
	LastRejected    time.Duration
	RecentRejection bool
	// Tables are the last rejected deliveries, then the last accepted but
	// not applied, newest first.
	Tables []deliveryTable
	Kept   int
}

// deliveryTable is the last deliveries of one class.
type deliveryTable struct {
	Class DeliveryClass
	Title string
	Rows  []deliveryRow
}

// countRow is one line of the counts since the start.
type countRow struct {
	DeliveryCount
	Class DeliveryClass
	Age   time.Duration
}

type deliveryRow struct {
	Delivery
	Class DeliveryClass
	Age   time.Duration
}

// recentRejection is how long a rejection marks the page's summary.
const recentRejection = 5 * time.Minute

func buildDeliveries(h DeliveryHistory, now time.Time) deliveriesSection {
	s := deliveriesSection{Applied: h.Totals[ClassApplied], NotApplied: h.Totals[ClassNotApplied],
		Rejected: h.Totals[ClassRejected], Kept: maxPageDeliveries}
	for _, c := range h.Counts {
		row := countRow{DeliveryCount: c, Class: ClassOf(c.Status), Age: now.Sub(c.Last)}
		if row.Class == ClassRejected && c.Last.After(s.LastRejectedAt) {
			s.LastRejectedAt = c.Last
		}
		s.Counts = append(s.Counts, row)
	}
	slices.SortStableFunc(s.Counts, func(a, b countRow) int { return cmp.Compare(a.Class, b.Class) })
	s.LastRejected = now.Sub(s.LastRejectedAt)
	s.RecentRejection = s.Rejected > 0 && s.LastRejected < recentRejection
	for _, c := range []DeliveryClass{ClassRejected, ClassNotApplied} {
		table := deliveryTable{Class: c, Title: tableTitles[c]}
		for _, d := range h.Last[c] {
			table.Rows = append(table.Rows, deliveryRow{d, c, now.Sub(d.Time)})
		}
		s.Tables = append(s.Tables, table)
	}
	return s
}

var tableTitles = [numClasses]string{ClassRejected: "Last rejected", ClassNotApplied: "Last accepted, not applied"}

func countByOrigin(servers []fleet.Server, states int) []originCounts {
	var out []originCounts
	for i := range servers {
		s := &servers[i]
		if len(out) == 0 || out[len(out)-1].Origin != s.Origin { // servers are sorted by origin
			out = append(out, originCounts{Origin: s.Origin, ByState: make([]int, states)})
		}
		c := &out[len(out)-1]
		c.ByState[s.State]++
		c.Total++
	}
	return out
}

// groupServers groups by deployment and region; groups and rows that need
// attention come first. Media servers carry what view says of them, unless
// it is nil (the API is off, or no poll succeeded yet).
func groupServers(servers []fleet.Server, view *fleet.GatewayView, now time.Time) []serverGroup {
	index := map[[2]string]int{}
	var groups []serverGroup
	for i := range servers {
		s := &servers[i]
		k := [2]string{s.Info.DeploymentID, s.Info.Region}
		gi, ok := index[k]
		if !ok {
			gi = len(groups)
			index[k] = gi
			groups = append(groups, serverGroup{Deployment: k[0], Region: k[1]})
		}
		row := serverRow{ServerJSON: serverJSON(s), Attention: needsAttention(s),
			InState: now.Sub(time.UnixMilli(s.SinceMs()))}
		if view != nil && s.Origin == mediaServerOrigin {
			row.Gateway = mediaServerGateway(view, s.Info.ID)
		}
		groups[gi].Rows = append(groups[gi].Rows, row)
		groups[gi].Attention += boolInt(row.Attention)
	}
	for _, g := range groups {
		slices.SortStableFunc(g.Rows, func(a, b serverRow) int { return boolInt(b.Attention) - boolInt(a.Attention) })
	}
	slices.SortFunc(groups, func(a, b serverGroup) int {
		return cmp.Or(boolInt(b.Attention > 0)-boolInt(a.Attention > 0),
			cmp.Compare(a.Deployment, b.Deployment), cmp.Compare(a.Region, b.Region))
	})
	return groups
}

// limitRows keeps the first n rows over all groups.
func limitRows(groups []serverGroup, n int) ([]serverGroup, int) {
	shown := 0
	for i := range groups {
		if shown+len(groups[i].Rows) > n {
			groups[i].Rows = groups[i].Rows[:n-shown]
			return groups[:i+boolInt(len(groups[i].Rows) > 0)], n
		}
		shown += len(groups[i].Rows)
	}
	return groups, shown
}

// ago renders a duration the way people read time in state: "3d 4h",
// "12m 5s", "40s".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	day := 24 * time.Hour
	switch {
	case d >= day:
		return fmt.Sprintf("%dd %dh", d/day, (d%day)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
