package exporter

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// GatewayPolls is what the status page learns from this exporter's poller
// of the Gateway's REST API (collector/gateway.Poller); nil when the API
// is off (no --liveswitch.api-url).
type GatewayPolls interface {
	// LastFailure is when this exporter's last failed poll began, and why;
	// zero before any failure.
	LastFailure() (at time.Time, reason string)
}

// mediaServerOrigin is the origin of the servers the Gateway lists.
const mediaServerOrigin = "mediaserver"

// capacityHigh is the used capacity the page marks, as
// LiveSwitchRegionCapacityHigh does for a region.
const capacityHigh = 0.8

// gatewayLine is what the page says of the Gateway's REST API.
type gatewayLine struct {
	// On: --liveswitch.api-url is set; nothing else is filled otherwise.
	On bool
	// Up is liveswitch_api_up: a recent successful poll, and no failure of
	// this exporter's polls since.
	Up bool
	// Polled: a successful poll is known (this replica's or another's).
	Polled   bool
	LastPoll time.Time
	Interval time.Duration
	// Failed: a poll of this exporter failed since it started; FailingNow:
	// after the last successful poll.
	Failed, FailingNow bool
	FailedAt           time.Time
	// Reason is the last failure's, fit for any client of the page.
	Reason string
	// Listed counts the media servers of the last successful poll;
	// Draining and Over those it said draining and over capacity;
	// Untracked those the fleet does not track (yet).
	Listed, Draining, Over, Untracked int
}

// serverGateway is what the last successful poll said of one media server.
type serverGateway struct {
	Listed bool
	// Capacity is the used capacity as a percentage ("" when not given);
	// Full marks one above capacityHigh.
	Capacity       string
	Full           bool
	Draining, Over bool
}

// buildGateway reads the API's state from the fleet's snapshot and from
// this exporter's poller.
func buildGateway(snap *fleet.Snapshot, polls GatewayPolls, now time.Time) gatewayLine {
	if polls == nil {
		return gatewayLine{}
	}
	g := gatewayLine{On: true}
	failedAt, reason := polls.LastFailure()
	if !failedAt.IsZero() {
		g.Failed, g.FailedAt, g.Reason = true, failedAt, clientSafe(reason)
	}
	// The poller's failure counts too, so that the line never says up beside
	// a failure that the fleet has not recorded yet.
	g.Up = fleet.APIUp(snap.Gateway, max(snap.APIFailedMs, failedAt.UnixMilli()), now)
	if v := snap.Gateway; v != nil {
		g.Polled, g.LastPoll, g.Interval = true, time.UnixMilli(v.PollMs).UTC(), time.Duration(v.IntervalMs)*time.Millisecond
		g.Listed, g.Untracked = len(v.MediaServers), len(v.MediaServers)
		for i := range v.MediaServers {
			g.Draining += boolInt(isTrue(v.MediaServers[i].Draining))
			g.Over += boolInt(isTrue(v.MediaServers[i].OverCapacity))
		}
		for i := range snap.Servers {
			if _, listed := v.Listed(snap.Servers[i].Info.ID); listed && snap.Servers[i].Origin == mediaServerOrigin {
				g.Untracked--
			}
		}
	}
	g.FailingNow = g.Failed && (!g.Polled || !failedAt.Before(g.LastPoll))
	return g
}

// mediaServerGateway is what the page shows of a media server beside its
// state when the API is on.
func mediaServerGateway(v *fleet.GatewayView, id string) *serverGateway {
	m, listed := v.Listed(id)
	if !listed {
		return &serverGateway{}
	}
	g := &serverGateway{Listed: true, Draining: isTrue(m.Draining), Over: isTrue(m.OverCapacity)}
	if m.UsedCapacity != nil {
		g.Capacity, g.Full = percent(*m.UsedCapacity), *m.UsedCapacity > capacityHigh
	}
	return g
}

func isTrue(b *bool) bool { return b != nil && *b }

// maxReasonBytes bounds a failure's reason on the page.
const maxReasonBytes = 300

var (
	// withQuery is a URL or a path followed by a query or a fragment.
	withQuery = regexp.MustCompile(`((?:[a-zA-Z][a-zA-Z0-9+.-]*://|/)[^\s"'<>?#]*)[?#][^\s"'<>)]*`)
	// userInfo is the user and password part of a URL.
	userInfo = regexp.MustCompile(`://[^/\s@"'<>]*@`)
	// absolutePath is a file path of two components or more (a Unix path
	// standing alone, not a URL's) or a Windows path.
	absolutePath = regexp.MustCompile(`(^|[\s"'(=,\[])((?:/[^/\s"'(),;\[\]]+){2,}/?|[A-Za-z]:\\[^\s"']*)`)
)

// clientSafe makes a reason from upstream fit for anyone who can open the
// page: no URL query (where a key may travel), no user or password of a
// URL, no absolute file path (only its last component), no control
// character, and not over maxReasonBytes. The poller masks the API key
// itself; this is the page's own guard.
func clientSafe(reason string) string {
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, reason)
	reason = withQuery.ReplaceAllString(reason, "$1")
	reason = userInfo.ReplaceAllString(reason, "://")
	reason = absolutePath.ReplaceAllStringFunc(reason, func(m string) string {
		sub := absolutePath.FindStringSubmatch(m)
		path := strings.TrimRight(sub[2], `/\`)
		return sub[1] + "…" + path[strings.LastIndexAny(path, `/\`):]
	})
	if len(reason) > maxReasonBytes {
		reason = strings.ToValidUTF8(reason[:maxReasonBytes], "") + "…"
	}
	return reason
}
