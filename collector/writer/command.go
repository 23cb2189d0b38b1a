package writer

import (
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// Command is the work of one request, as data: the events of a webhook, a
// server to forget, a sweep at a given time, or what the Gateway's REST API
// said at a poll. Being data, it can be applied at once or appended to a
// shared log and applied by every replica alike; it carries the times it
// needs, so applying it never reads a clock. Its JSON form is that of the
// entries of a shared log written by earlier versions, which replicas still
// read: the names of its members do not change.
type Command struct {
	Events     []event.Event `json:"e,omitempty"`
	Forget     *fleet.Key    `json:"f,omitempty"`
	SweepMs    int64         `json:"s,omitempty"`
	ReceivedMs int64         `json:"r,omitempty"`
	// Observation is a successful poll of the Gateway's REST API.
	Observation *fleet.Observation `json:"g,omitempty"`
}

// apply stages the command's changes.
func (c *Command) apply(st *fleet.Staging) fleet.Result {
	var res fleet.Result
	st.Received(c.ReceivedMs)
	for i := range c.Events {
		res.Outcomes[st.Apply(&c.Events[i])]++
	}
	if c.Forget != nil && st.Forget(*c.Forget) {
		res.Forgotten++
	}
	if c.SweepMs != 0 {
		res.Forgotten += st.Sweep(time.UnixMilli(c.SweepMs))
	}
	if c.Observation != nil {
		st.Observe(c.Observation)
	}
	return res
}
