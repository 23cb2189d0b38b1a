package fleet

// Change is what reconciliation with the Gateway's list did to a server.
type Change uint8

// Changes, as exported in liveswitch_exporter_reconciled_total{change}.
const (
	// ChangeCreated: the Gateway lists a media server the fleet did not
	// know; it is created registered.
	ChangeCreated Change = iota
	// ChangeRegistered: the Gateway lists a media server the fleet has held
	// as running, unregistered or stopped for more than two intervals; it
	// missed its registered webhook and becomes registered.
	ChangeRegistered
	// NumChanges is the number of changes: the size of arrays indexed by
	// Change.
	NumChanges
)

var changeNames = [NumChanges]string{"created", "registered"}

// String returns the change as exported in the change label.
func (c Change) String() string {
	if c < NumChanges {
		return changeNames[c]
	}
	return "unknown"
}

// MediaServerOrigin is the origin of media servers, the servers the
// Gateway's API lists.
const MediaServerOrigin = "mediaserver"

// Reconcile is the rule by which the Gateway listing a media server changes
// it, as Step is for events: prev is the fleet's record (nil if unknown), m
// what the API said of it in the observation o. It never modifies prev; it
// returns the record that replaces it and the change, or ok false when the
// record stands.
//
// Only a listing changes anything: absence from the list never does, since
// the webhooks stay the witness of stops and unregistrations (the absence is
// exposed as liveswitch_server_gateway_listed 0 instead). A state entered
// less than two intervals before the poll, by the exporter's clock, is left
// alone: the list may lag a registration or an unregistration that just
// happened.
//
// A poll is stamped with the exporter's clock, not LiveSwitch's, so what it
// sets is not an event: it never moves the order of real events
// (LastActionMs), and any real event delivered after it that is newer than
// the server's last real event applies (see Step), whatever the two clocks
// say. The state it sets is marked by ReconciledMs.
func Reconcile(prev *Server, m *MediaServerFacts, o *Observation) (next *Server, change Change, ok bool) {
	switch {
	case prev == nil:
		return &Server{
			Origin: MediaServerOrigin, Info: m.info(), State: StateRegistered,
			LastEventMs: o.AtMs, ReconciledMs: o.AtMs, StateReceivedMs: o.AtMs,
		}, ChangeCreated, true
	case prev.State != StateRegistered && o.AtMs-prev.stateReceivedMs() > 2*o.IntervalMs:
		s := *prev
		s.State = StateRegistered
		s.Info = mergeInfo(s.Info, m.info())
		s.ReconciledMs, s.StateReceivedMs = o.AtMs, o.AtMs
		return &s, ChangeRegistered, true
	}
	return prev, 0, false
}

// Observe stages an observation: the servers reconciliation changes, and
// the Gateway view it replaces.
func (st *Staging) Observe(o *Observation) {
	view := newGatewayView(o, st.view())
	for i := range view.MediaServers {
		m := &view.MediaServers[i]
		k := Key{Origin: MediaServerOrigin, ID: m.ID}
		prev := st.get(k)
		next, change, ok := Reconcile(prev, m, o)
		if !ok || (prev == nil && st.full() && !st.evict()) {
			continue
		}
		st.set(k, prev, next)
		view.Reconciled[change]++
	}
	st.gateway = view
}

// view is the Gateway view as it stands in the group being staged.
func (st *Staging) view() *GatewayView {
	if st.gateway != nil {
		return st.gateway
	}
	return st.fleet.gateway
}

// listedByGateway reports whether the Gateway's last successful poll listed
// the server k: such a server is alive, whatever its webhooks say.
func (st *Staging) listedByGateway(k Key) bool {
	if k.Origin != MediaServerOrigin {
		return false
	}
	_, ok := st.view().Listed(k.ID)
	return ok
}
