package collector

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
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
	Reconciled [numChanges]uint64 `json:"reconciled"`
}

// gatewayRecordKey names the view's record in a Store. Server records are
// named "<origin>/<id>" with origins of [a-z0-9_], so a key starting with
// '#' can never be a server's.
const gatewayRecordKey = "#gateway"

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

// validate applies the observation's rules to a view read back from a
// store, and requires its lists sorted, as they were written.
func (v *GatewayView) validate() error {
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

// decodeGatewayView reads a stored view; a view that does not pass the
// observation's rules is an error, never skipped, as a server record is.
func decodeGatewayView(data []byte) (*GatewayView, error) {
	var v GatewayView
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("not a Gateway view: %w", err)
	}
	if err := v.validate(); err != nil {
		return nil, fmt.Errorf("Gateway view: %w", err)
	}
	return &v, nil
}

// restoreGateway loads the view stored under gatewayRecordKey.
func (f *Fleet) restoreGateway(data []byte) error {
	v, err := decodeGatewayView(data)
	if err != nil {
		return fmt.Errorf("storage record %q: %w", gatewayRecordKey, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gateway = v
	return nil
}

// putGateway adds the staged view, if the group changed it, to b: it is
// committed with the servers it changed, in one batch.
func (st *staging) putGateway(b *storage.Batch) error {
	if st.gateway == nil {
		return nil
	}
	value, err := json.Marshal(st.gateway)
	if err != nil {
		return err
	}
	b.Puts[gatewayRecordKey] = value
	return nil
}
