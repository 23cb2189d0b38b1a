package collector

import "sync"

// combiner gathers the requests of concurrent webhooks into groups, and has
// the requests themselves commit them, one group at a time ("flat
// combining"): a request that finds no commit under way commits every
// request waiting, its own included; a request that arrives during a commit
// waits, and its group is committed next. So an isolated request commits
// itself, with no hand-off to another goroutine, and under load each commit
// (one fold, one fsync or one Redis append) serves a whole group.
//
// Once a committing request's own group is done, it hands the role on to
// the first waiting request rather than committing the groups behind it:
// its own webhook is answered without waiting for theirs.
type combiner struct {
	commit func(group []*request)

	mu      sync.Mutex
	waiting []*request
	busy    bool // a request is committing
	closed  bool
	idle    sync.Cond // signalled when busy ends
	group   []*request
}

func (c *combiner) init(commit func([]*request)) {
	c.commit = commit
	c.idle.L = &c.mu
}

// submit queues r and returns its answer, committing groups itself when
// no other request does. It reports false when the writer is closed.
func (c *combiner) submit(r *request) (outcomeOrErr, bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return outcomeOrErr{}, false
	}
	c.waiting = append(c.waiting, r)
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		c.run(r)
		return <-r.result, true
	}
	c.mu.Unlock()
	out := <-r.result
	if out.commit { // the role of committing was handed on to r
		c.run(r)
		out = <-r.result
	}
	return out, true
}

// run commits waiting groups until own's is done, then hands the role on.
func (c *combiner) run(own *request) {
	for {
		c.mu.Lock()
		n := min(len(c.waiting), maxGroup)
		c.group = append(c.group[:0], c.waiting[:n]...)
		mine := false
		for _, r := range c.group {
			mine = mine || r == own
		}
		rest := copy(c.waiting, c.waiting[n:])
		clear(c.waiting[rest:])
		c.waiting = c.waiting[:rest]
		c.mu.Unlock()

		c.commit(c.group)
		clear(c.group)

		c.mu.Lock()
		switch {
		case len(c.waiting) == 0:
			c.busy = false
			c.idle.Broadcast()
			c.mu.Unlock()
			return
		case mine:
			next := c.waiting[0]
			c.mu.Unlock()
			next.result <- outcomeOrErr{commit: true}
			return
		}
		c.mu.Unlock()
	}
}

// close refuses new requests and waits until the groups taken are
// committed. It reports whether it closed (false the second time).
func (c *combiner) close() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	for c.busy {
		c.idle.Wait()
	}
	return true
}
