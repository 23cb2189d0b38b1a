package applications

import (
	"fmt"
	"strings"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// Refusal says why an application event was refused: answered 202 and not
// counted.
type Refusal uint8

// Refusals, as exported in the reason label.
const (
	// RefusedMaxApplications: a new application while --application.max
	// are counted and none is idle.
	RefusedMaxApplications Refusal = iota
	// RefusedTooOld: stamped longer ago than --application.max-event-age.
	RefusedTooOld
	// RefusedTooFarAhead: stamped further ahead than
	// --webhook.max-future-skew.
	RefusedTooFarAhead
	numRefusals
)

var refusalNames = [numRefusals]string{"max_applications", "too_old", "too_far_ahead"}

// String returns the refusal as exported in the reason label.
func (r Refusal) String() string { return refusalNames[r] }

// Result is what became of the events of one body: fleet.Result's
// outcomes (refused ones with their reasons).
type Result struct {
	fleet.Result
	// Refused counts the refused events by reason.
	Refused [numRefusals]int
	// limits are the flags' values the reasons quote.
	limits [numRefusals]string
}

func (r *Result) refuse(why Refusal) {
	r.Outcomes[fleet.OutcomeRefused]++
	r.Refused[why]++
}

// String lists the outcomes, then why events were refused, naming the flag
// that refused them: "applied=2 refused=1; 1 older than
// --application.max-event-age (1h0m0s)".
func (r Result) String() string {
	s := r.Result.String()
	var why []string
	for reason, n := range r.Refused {
		if n > 0 {
			why = append(why, fmt.Sprintf("%d %s", n, r.limits[reason]))
		}
	}
	if len(why) == 0 {
		return s
	}
	return s + "; " + strings.Join(why, ", ")
}

// limitsText renders the flags the refusals quote.
func (t *Tracker) limitsText() [numRefusals]string {
	ahead := "--webhook.max-future-skew"
	if t.opts.Decode.MaxFutureSkew <= 0 { // no limit for server events; application events stay bounded
		ahead = "--application.max-event-age"
	}
	return [numRefusals]string{
		RefusedMaxApplications: fmt.Sprintf("beyond --application.max (%d) until an application is idle for --application.idle-after (%s)",
			t.opts.MaxApplications, t.opts.IdleAfter),
		RefusedTooOld:      fmt.Sprintf("older than --application.max-event-age (%s)", t.limits.MaxEventAge),
		RefusedTooFarAhead: fmt.Sprintf("further ahead than %s (%s)", ahead, t.limits.MaxFutureSkew),
	}
}
