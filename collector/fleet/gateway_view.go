package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// GatewayView is what the fleet holds from the Gateway's REST API: the last
// successful observation, and what reconciliation changed so far. A view is
// never modified once published; each observation replaces it whole, so
// that a media server the Gateway stopped listing loses its API series at
// the next successful poll.
type GatewayView struct {
	// PollMs is when the last successful poll began (exporter clock).
	PollMs     int64 `json:"poll_ms"`
	IntervalMs int64 `json:"interval_ms"`
	// MediaServers and Applications are sorted by id.
	MediaServers []MediaServerFacts `json:"media_servers,omitempty"`
	Applications []ApplicationFacts `json:"applications,omitempty"`
	// Reconciled counts the changes reconciliation made, by Change.
	Reconciled [NumChanges]uint64 `json:"reconciled"`
}

func newGatewayView(o *Observation, prev *GatewayView) *GatewayView {
	v := &GatewayView{PollMs: o.AtMs, IntervalMs: o.IntervalMs}
	v.MediaServers, v.Applications = o.sorted()
	if prev != nil {
		v.Reconciled = prev.Reconciled
	}
	return v
}

// Listed returns what the last successful poll said of media server id, if
// it listed it. A nil view lists nothing.
func (v *GatewayView) Listed(id string) (*MediaServerFacts, bool) {
	if v == nil {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(v.MediaServers, id, func(m MediaServerFacts, id string) int {
		return cmp.Compare(m.ID, id)
	})
	if !ok {
		return nil, false
	}
	return &v.MediaServers[i], true
}

// Validate applies the observation's rules to a view read back from a
// store, and requires its lists sorted, as they were written.
func (v *GatewayView) Validate() error {
	o := Observation{AtMs: v.PollMs, IntervalMs: v.IntervalMs, MediaServers: v.MediaServers, Applications: v.Applications}
	if err := o.Validate(); err != nil {
		return err
	}
	sortedServers := slices.IsSortedFunc(v.MediaServers, func(a, b MediaServerFacts) int { return cmp.Compare(a.ID, b.ID) })
	sortedApps := slices.IsSortedFunc(v.Applications, func(a, b ApplicationFacts) int { return cmp.Compare(a.ID, b.ID) })
	if !sortedServers || !sortedApps {
		return fmt.Errorf("lists not sorted by id")
	}
	return nil
}

// apiFreshIntervals is how many poll intervals a successful poll stays
// recent: a replica that does not poll itself learns that the API is down
// only from the successes that stop coming.
const apiFreshIntervals = 3

// APIUp is the rule of liveswitch_api_up, which the status page shows too:
// a successful poll (v, nil before the first) is recent at now, and this
// exporter's own polls have not failed since (failedMs).
func APIUp(v *GatewayView, failedMs int64, now time.Time) bool {
	return v != nil && failedMs < v.PollMs && now.UnixMilli()-v.PollMs <= apiFreshIntervals*v.IntervalMs
}
