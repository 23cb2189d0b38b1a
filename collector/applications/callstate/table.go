package callstate

import "math"

// entry is one connection, channel or client held between its start and
// its end, linked in the list of its class in the order entries joined it.
type entry struct {
	key Key
	app string // shares the bytes of the decoded event's id
	// startMs is the event time of a connection's initializing or a
	// channel's activation; upMs of a connection's connected; 0: not seen.
	startMs, upMs int64
	// members and peak are a channel's clients now and at most.
	members, peak int32
	// deadlineMs is when the entry expires, by the exporter's clock.
	deadlineMs int64
	class      uint8 // classPending or classOpen
	prev, next int32 // neighbours in its class's list; none: -1
}

// Classes of entries: each has its time to live, so each list is in
// deadline order when the clock does not go back.
const (
	classPending uint8 = iota // a connection not yet connected
	classOpen                 // everything else
	numClasses
)

const none int32 = -1

// maxSlots is the most entries a table can address.
const maxSlots = math.MaxInt32

// table holds the entries of one kind: a slice of fixed-size slots, reused
// once an entry ends, and a map from key to slot; about 130 bytes of heap
// an entry whatever its ids, and never more slots than the table held at
// once. It is bounded twice: an entry lives until its deadline, and the
// table holds at most max entries, a new one dropping the entry with the
// earliest deadline (the head of one of the lists).
type table struct {
	max   int
	index map[Key]int32
	slots []entry
	// free heads the list of unused slots, linked through next.
	free  int32
	lists [numClasses]struct{ head, tail int32 }
}

func newTable(maxEntries int) *table {
	if maxEntries <= 0 || maxEntries > maxSlots {
		maxEntries = maxSlots
	}
	t := &table{max: maxEntries, index: make(map[Key]int32), free: none}
	for c := range t.lists {
		t.lists[c].head, t.lists[c].tail = none, none
	}
	return t
}

func (t *table) len() int { return len(t.index) }

// lookup returns the slot of k, or none.
func (t *table) lookup(k Key) int32 {
	if i, ok := t.index[k]; ok {
		return i
	}
	return none
}

// insert adds an entry for k of app, of class, expiring at deadlineMs. The
// table must have room.
func (t *table) insert(k Key, app string, class uint8, deadlineMs int64) int32 {
	i := t.alloc()
	t.slots[i] = entry{key: k, app: app, deadlineMs: deadlineMs, class: class, prev: none, next: none}
	t.link(i)
	t.index[k] = i
	return i
}

// moveTo puts entry i in class with a new deadline, at the end of its list.
func (t *table) moveTo(i int32, class uint8, deadlineMs int64) {
	t.unlink(i)
	t.slots[i].class, t.slots[i].deadlineMs = class, deadlineMs
	t.link(i)
}

// earliest returns the entry with the earliest deadline, or none: the
// earlier of the lists' heads.
func (t *table) earliest() int32 {
	best := none
	for _, l := range t.lists {
		if l.head != none && (best == none || t.slots[l.head].deadlineMs < t.slots[best].deadlineMs) {
			best = l.head
		}
	}
	return best
}

// remove unlinks entry i and frees its slot.
func (t *table) remove(i int32) {
	t.unlink(i)
	delete(t.index, t.slots[i].key)
	t.slots[i] = entry{next: t.free}
	t.free = i
}

func (t *table) link(i int32) {
	l := &t.lists[t.slots[i].class]
	t.slots[i].prev, t.slots[i].next = l.tail, none
	if l.tail != none {
		t.slots[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

func (t *table) unlink(i int32) {
	s := &t.slots[i]
	l := &t.lists[s.class]
	if s.prev != none {
		t.slots[s.prev].next = s.next
	} else {
		l.head = s.next
	}
	if s.next != none {
		t.slots[s.next].prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = none, none
}

// alloc returns an unused slot, reusing a freed one first.
func (t *table) alloc() int32 {
	if i := t.free; i != none {
		t.free = t.slots[i].next
		return i
	}
	t.slots = append(t.slots, entry{})
	return int32(len(t.slots) - 1)
}
