package exporter

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// ApplicationReader is what the status page reads of the application
// webhooks: collector/applications.Tracker, the ApplicationIngester, is
// one.
type ApplicationReader interface {
	Recent() []applications.Recent
}

// The routes find the reader in Config.Applications; this keeps the
// Tracker one.
var _ ApplicationReader = (*applications.Tracker)(nil)

// failureRatioHigh is the connection failure ratio the page marks, the
// threshold of LiveSwitchConnectionFailureRatioHigh.
const failureRatioHigh = 0.05

// maxPageApps bounds the applications on the page (--application.max may
// be thousands); the busiest come first.
const maxPageApps = 100

// appsSection is what the page says of the applications.
type appsSection struct {
	// Counted: this exporter counts application webhooks; GatewayOn: it
	// polls the Gateway's counts.
	Counted, GatewayOn bool
	Rows               []appRow
	Shown, Total       int
	Window             string
}

// appRow is one application: what its webhooks did of late, as this
// replica received them, and what the Gateway counts of it.
type appRow struct {
	ID string
	// Counted: this exporter counts its webhooks (it may be known from
	// the Gateway only).
	Counted bool
	Events  uint64
	// Ratio is the connection failure ratio ("" without a connected or a
	// failed); Attempts is connected + failed.
	Ratio    string
	Failing  bool
	Attempts uint64
	// P50 and P95 are the setup time's quantiles ("" without a setup).
	P50, P95 string
	// Gateway holds the Gateway's counts, nil when its last poll did not
	// list the application.
	Gateway *gatewayCounts
}

// gatewayCounts are the Gateway's counts of one application, "" where it
// gave none.
type gatewayCounts struct {
	Channels, Clients, Connections, Users, Devices string
}

func buildApps(reader ApplicationReader, view *fleet.GatewayView, gatewayOn bool) appsSection {
	s := appsSection{Counted: reader != nil, GatewayOn: gatewayOn, Window: fmt.Sprintf("%g minutes", applications.RecentWindow.Minutes())}
	index := map[string]int{}
	var rows []appRow
	if reader != nil {
		for _, r := range reader.Recent() {
			index[r.ID] = len(rows)
			rows = append(rows, recentRow(&r))
		}
	}
	if gatewayOn && view != nil {
		for i := range view.Applications {
			a := &view.Applications[i]
			at, ok := index[a.ID]
			if !ok {
				at = len(rows)
				rows = append(rows, appRow{ID: a.ID})
			}
			rows[at].Gateway = &gatewayCounts{Channels: count(a.Channels), Clients: count(a.Clients),
				Connections: count(a.Connections), Users: count(a.Users), Devices: count(a.Devices)}
		}
	}
	slices.SortFunc(rows, func(a, b appRow) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(a.ID, b.ID))
	})
	s.Total = len(rows)
	s.Rows = rows[:min(len(rows), maxPageApps)]
	s.Shown = len(s.Rows)
	return s
}

func recentRow(r *applications.Recent) appRow {
	row := appRow{ID: r.ID, Counted: true, Events: r.Events, Attempts: r.Connected + r.Failed}
	if ratio, ok := r.FailureRatio(); ok {
		row.Ratio, row.Failing = percent(ratio), ratio > failureRatioHigh
	}
	row.P50, row.P95 = quantile(r, 0.5), quantile(r, 0.95)
	return row
}

// quantile renders a setup time's quantile: "1.25 s", "> 30 s", or "".
func quantile(r *applications.Recent, q float64) string {
	v, above, ok := r.SetupQuantile(q)
	switch {
	case !ok:
		return ""
	case above:
		return "> " + seconds(v)
	}
	return seconds(v)
}

// seconds renders a time in seconds with two significant decimals at
// most: "0.35 s", "1.2 s", "12 s".
func seconds(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(v, 'f', 2, 64) + " s"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " s"
}

// percent renders a ratio as a percentage: "2.5 %", "42 %", "107 %".
func percent(ratio float64) string {
	p := 100 * ratio
	if p != 0 && p < 10 {
		return fmt.Sprintf("%.1f %%", p)
	}
	return fmt.Sprintf("%.0f %%", p)
}

func count(n *int64) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(*n, 10)
}
