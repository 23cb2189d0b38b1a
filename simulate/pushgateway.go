package simulate

import (
	"fmt"
	"net/url"
	"strings"
)

// PushPath is where the Pushgateway keeps the group of the event's server:
// one group per server, as a user scripting around the Pushgateway would do.
func (e Event) PushPath() string {
	return "/metrics/job/liveswitch/origin/" + url.PathEscape(e.state.origin) + "/id/" + url.PathEscape(e.state.id)
}

// PushBody renders the server's state after the event in the text format,
// the body of a PUT to the Pushgateway: the same information the exporter
// derives from the webhook.
func (e Event) PushBody() []byte {
	s := e.state
	state := s.stateName()
	labels := fmt.Sprintf(`region=%q,deployment_id=%q`, s.region, s.deployment)
	var b strings.Builder
	fmt.Fprintf(&b, "liveswitch_server_up{%s} %d\n", labels, boolInt(s.up))
	for _, st := range []string{"running", "registered", "unregistered", "stopped"} {
		fmt.Fprintf(&b, "liveswitch_server_state{%s,state=%q} %d\n", labels, st, boolInt(st == state))
	}
	fmt.Fprintf(&b, "liveswitch_server_cores{%s} %d\n", labels, s.cores)
	fmt.Fprintf(&b, "liveswitch_server_info{%s,machine_name=%q,version=%q} 1\n", labels, s.machine, s.version)
	fmt.Fprintf(&b, "liveswitch_server_last_event_timestamp_seconds{%s} %.3f\n", labels, float64(e.ms)/1000)
	return []byte(b.String())
}

// stateName is the server's state as the exporter names it.
func (s server) stateName() string {
	switch {
	case !s.up:
		return "stopped"
	case s.registered:
		return "registered"
	case s.everRegistered:
		return "unregistered"
	}
	return "running"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
