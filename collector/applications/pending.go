package applications

import (
	"hash/maphash"
	"math"
	"time"
)

// DropReason says why a pending connection was dropped before its
// "connected" came.
type DropReason uint8

// Reasons, as exported in liveswitch_exporter_pending_connections_dropped_total{reason}.
const (
	// DropExpired: no "connected" within the table's time to live.
	DropExpired DropReason = iota
	// DropEvicted: the table was full, and a newer connection took the
	// place of the oldest.
	DropEvicted
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"expired", "evicted"}

// String returns the reason as exported in the reason label.
func (r DropReason) String() string { return dropReasonNames[r] }

// pendingKey identifies a connection by a 128-bit keyed hash of its
// application and id: 16 bytes whatever the ids' length, and no collision
// can be crafted without the table's random seeds.
type pendingKey [2]uint64

// slot is one pending connection, linked in the order connections entered
// the table.
type slot struct {
	key        pendingKey
	startMs    int64 // event time of its "initializing"
	atMs       int64 // exporter time it entered the table
	prev, next int32 // neighbours in entry order; none: -1
}

// pendingTable holds the connections between their "initializing" and
// their "connected", so that the time between the two can be observed.
// It is bounded twice: an entry lives at most ttl (by the exporter's
// clock), and the table holds at most max entries; when it is full, the
// oldest entry is dropped for the newest, since a connection that has not
// connected for long is the one least likely to. Entries live in a slice
// of fixed-size slots, linked in entry order and reused once finished, and
// a map from key to slot: about 115 bytes of heap a connection whatever
// its ids (11 MiB at the default cap of 100,000, measured by
// TestMemoryFlatUnderNeverConnectingConnections), and never more slots
// than the table ever held at once.
type pendingTable struct {
	max   int
	ttl   time.Duration
	seeds [2]maphash.Seed
	index map[pendingKey]int32
	slots []slot
	// free heads the list of unused slots, linked through next.
	free       int32
	head, tail int32 // oldest and newest entry
	dropped    [numDropReasons]uint64
}

const none int32 = -1

// maxPendingSlots is the most slots a table can address.
const maxPendingSlots = math.MaxInt32

func newPendingTable(maxEntries int, ttl time.Duration) *pendingTable {
	if maxEntries <= 0 || maxEntries > maxPendingSlots {
		maxEntries = maxPendingSlots
	}
	return &pendingTable{
		max: maxEntries, ttl: ttl,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		index: make(map[pendingKey]int32), free: none, head: none, tail: none,
	}
}

func (p *pendingTable) key(application, connection string) pendingKey {
	var k pendingKey
	for i, seed := range p.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(application)
		h.WriteByte(0) // ids hold no control character: an unambiguous separator
		h.WriteString(connection)
		k[i] = h.Sum64()
	}
	return k
}

// start records that a connection initialized at event time startMs. A
// repeated "initializing" (a retried delivery) keeps the earliest time.
func (p *pendingTable) start(k pendingKey, startMs int64, now time.Time) {
	p.expire(now)
	if i, ok := p.index[k]; ok {
		p.slots[i].startMs = min(p.slots[i].startMs, startMs)
		return
	}
	if len(p.index) >= p.max {
		p.drop(p.head, DropEvicted)
	}
	i := p.alloc()
	p.slots[i] = slot{key: k, startMs: startMs, atMs: now.UnixMilli(), prev: p.tail, next: none}
	if p.tail != none {
		p.slots[p.tail].next = i
	} else {
		p.head = i
	}
	p.tail = i
	p.index[k] = i
}

// finish removes a connection and returns the event time of its
// "initializing", if it was pending.
func (p *pendingTable) finish(k pendingKey) (startMs int64, ok bool) {
	i, ok := p.index[k]
	if !ok {
		return 0, false
	}
	startMs = p.slots[i].startMs
	p.remove(i)
	return startMs, true
}

// expire drops the entries older than the table's time to live.
func (p *pendingTable) expire(now time.Time) {
	limit := now.Add(-p.ttl).UnixMilli()
	for p.head != none && p.slots[p.head].atMs <= limit {
		p.drop(p.head, DropExpired)
	}
}

// drop removes entry i before its "connected" came, and counts why.
func (p *pendingTable) drop(i int32, why DropReason) {
	p.remove(i)
	p.dropped[why]++
}

// remove unlinks entry i and frees its slot.
func (p *pendingTable) remove(i int32) {
	s := &p.slots[i]
	if s.prev != none {
		p.slots[s.prev].next = s.next
	} else {
		p.head = s.next
	}
	if s.next != none {
		p.slots[s.next].prev = s.prev
	} else {
		p.tail = s.prev
	}
	delete(p.index, s.key)
	*s = slot{next: p.free}
	p.free = i
}

// alloc returns an unused slot, reusing a freed one first.
func (p *pendingTable) alloc() int32 {
	if i := p.free; i != none {
		p.free = p.slots[i].next
		return i
	}
	p.slots = append(p.slots, slot{})
	return int32(len(p.slots) - 1)
}

// len is the number of pending connections.
func (p *pendingTable) len() int { return len(p.index) }
