package writer

import "sync"

// combiner gathers the requests of concurrent webhooks into groups, and has
// the requests themselves commit them, one group at a time ("flat
// combining"): a request that finds no commit under way commits the
// requests waiting (up to maxGroup), its own included; a request that
// arrives during a commit waits, and its group is committed next. So an isolated request commits
// itself, with no hand-off to another goroutine, and under load each commit
// (one fold, one fsync or one Redis append) serves a whole group.
//
// Once its group is done, a committing request hands the role on to the
// first waiting request rather than committing the groups behind it: its
// own webhook is answered without waiting for theirs.
type combiner struct {
	commit func(group []*Request)

	mu      sync.Mutex
	waiting []*Request
	busy    bool // a request is committing
	closed  bool
	idle    sync.Cond // signalled when busy ends
	group   []*Request
}

func (c *combiner) init(commit func([]*Request)) {
	c.commit = commit
	c.idle.L = &c.mu
}

// submit queues r and returns its answer, committing groups itself when
// no other request does. It reports false when the writer is closed.
func (c *combiner) submit(r *Request) (outcomeOrErr, bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return outcomeOrErr{}, false
	}
	c.waiting = append(c.waiting, r)
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		c.run()
		return <-r.result, true
	}
	c.mu.Unlock()
	out := <-r.result
	if out.commit { // the role of committing was handed on to r
		c.run()
		out = <-r.result
	}
	return out, true
}

// run commits the group at the head of the queue, then hands the role on
// to the first request still waiting. The caller's own request is always
// in that group: it is the first waiting, since it either found no commit
// under way (so the queue was empty) or was handed the role as the first.
func (c *combiner) run() {
	c.mu.Lock()
	n := min(len(c.waiting), maxGroup)
	c.group = append(c.group[:0], c.waiting[:n]...)
	rest := copy(c.waiting, c.waiting[n:])
	clear(c.waiting[rest:])
	c.waiting = c.waiting[:rest]
	c.mu.Unlock()

	c.commit(c.group)
	clear(c.group)

	c.mu.Lock()
	if len(c.waiting) == 0 {
		c.busy = false
		c.idle.Broadcast()
		c.mu.Unlock()
		return
	}
	next := c.waiting[0]
	c.mu.Unlock()
	next.result <- outcomeOrErr{commit: true}
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
