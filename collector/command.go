package collector

import "time"

// command is the work of one request, as data: the events of a webhook, a
// server to forget, a sweep at a given time, or what the Gateway's REST API
// said at a poll. Being data, it can be applied at once or appended to a
// shared log and applied by every replica alike; it carries the times it
// needs, so applying it never reads a clock.
type command struct {
	Events     []Event `json:"e,omitempty"`
	Forget     *Key    `json:"f,omitempty"`
	SweepMs    int64   `json:"s,omitempty"`
	ReceivedMs int64   `json:"r,omitempty"`
	// Observation is a successful poll of the Gateway's REST API.
	Observation *Observation `json:"g,omitempty"`
}

// apply stages the command's changes.
func (c *command) apply(st *Staging) Result {
	var res Result
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

// folder stages a group of commands on the fleet, one after the other, and
// sums up what they did; nothing is visible until the caller publishes the
// staging. It reuses its memory from one group to the next: whoever folds
// groups one after the other (the request committing, a replica's
// follower) keeps one. What it returns is valid until its next fold.
type folder struct {
	st      Staging
	results []Result
	cmds    []*command
}

func (fd *folder) fold(f *Fleet, limits Limits, cmds []*command) (st *Staging, results []Result) {
	st = &fd.st
	st.Reset(f, limits)
	results = append(fd.results[:0], make([]Result, len(cmds))...)
	fd.results = results
	for i, c := range cmds {
		results[i] = c.apply(st)
	}
	return st, results
}

// commands lists the commands of group, in the folder's memory.
func (fd *folder) commands(group []*request) []*command {
	fd.cmds = fd.cmds[:0]
	for _, r := range group {
		fd.cmds = append(fd.cmds, &r.cmd)
	}
	return fd.cmds
}
