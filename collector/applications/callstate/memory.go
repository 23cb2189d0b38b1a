package callstate

import (
	"context"
	"sync"
	"time"
)

// memoryState is the State of one exporter: in this process's memory,
// lost at a restart, never stored.
type memoryState struct {
	limits Limits
	mu     sync.Mutex
	tables [NumTables]*table
	seen   *remembered
	// levels counts the entries of each application per table; an
	// application without any has none.
	levels map[string]*[NumTables]int64
}

// NewMemory returns the State of an exporter without replicas.
func NewMemory(l Limits) State {
	l = l.withDefaults()
	s := &memoryState{limits: l, seen: newRemembered(l), levels: map[string]*[NumTables]int64{}}
	for t := range s.tables {
		s.tables[t] = newTable(l.MaxEntries[t])
	}
	return s
}

// Apply implements State.
func (s *memoryState) Apply(_ context.Context, facts []Fact, now time.Time, effects []Effect) (Drops, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMs := now.UnixMilli()
	drops := s.expire(nowMs)
	for i := range facts {
		effects[i] = s.apply(&facts[i], nowMs, &drops)
	}
	return drops, nil
}

// Sweep implements State.
func (s *memoryState) Sweep(_ context.Context, now time.Time) (Drops, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expire(now.UnixMilli()), nil
}

// expire drops the entries whose deadline passed, and forgets the events
// too old to be accepted.
func (s *memoryState) expire(nowMs int64) Drops {
	var d Drops
	for ti, t := range s.tables {
		for i := t.earliest(); i != none && t.slots[i].deadlineMs <= nowMs; i = t.earliest() {
			s.drop(Table(ti), i, DropExpired, &d)
		}
	}
	s.seen.expire(nowMs)
	return d
}

func (s *memoryState) apply(f *Fact, nowMs int64, d *Drops) Effect {
	if dup, kept := s.seen.add(f.Seen, f.Ms); dup {
		return Effect{Duplicate: true, SpanMs: -1}
	} else if !kept {
		e := s.change(f, nowMs, d)
		e.Unremembered = true
		return e
	}
	return s.change(f, nowMs, d)
}

// change applies the Op of f: the rules of State.
func (s *memoryState) change(f *Fact, nowMs int64, d *Drops) Effect {
	e := Effect{SpanMs: -1}
	tb, ok := f.Op.Table()
	if !ok {
		return e
	}
	t := s.tables[tb]
	i := t.lookup(f.Entity)
	if i != none && t.slots[i].deadlineMs <= nowMs {
		s.drop(tb, i, DropExpired, d)
		i = none
	}
	openDeadline := nowMs + s.limits.OpenTTL.Milliseconds()
	switch f.Op {
	case OpConnectionStart:
		if i == none {
			i = s.insert(tb, f, classPending, nowMs, nowMs+s.limits.PendingTTL.Milliseconds(), d)
		}
		if en := &t.slots[i]; en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case OpConnectionUp:
		if i == none {
			i = s.insert(tb, f, classOpen, nowMs, openDeadline, d)
		}
		if en := &t.slots[i]; en.upMs == 0 {
			en.upMs = f.Ms
			if en.startMs != 0 && f.Ms >= en.startMs {
				e.SpanMs = f.Ms - en.startMs
			}
			t.moveTo(i, classOpen, openDeadline)
		}
	case OpConnectionClose, OpConnectionFail:
		e.Phase = PhaseUnknown
		if i == none {
			break
		}
		if en := &t.slots[i]; en.upMs != 0 {
			e.Phase = PhaseEstablished
			if f.Ms >= en.upMs {
				e.SpanMs = f.Ms - en.upMs
			}
		} else {
			e.Phase = PhaseSetup
		}
		s.remove(tb, i)
	case OpChannelOn:
		if i == none {
			i = s.insert(tb, f, classOpen, nowMs, openDeadline, d)
		}
		if en := &t.slots[i]; en.startMs == 0 || f.Ms < en.startMs {
			en.startMs = f.Ms
		}
	case OpChannelJoin:
		if i == none {
			i = s.insert(tb, f, classOpen, nowMs, openDeadline, d)
		}
		en := &t.slots[i]
		en.members++
		en.peak = max(en.peak, en.members)
	case OpChannelLeave:
		if i != none && t.slots[i].members > 0 {
			t.slots[i].members--
		}
	case OpChannelOff:
		if i == none {
			break
		}
		if en := &t.slots[i]; en.startMs != 0 && f.Ms >= en.startMs {
			e.SpanMs, e.Peak = f.Ms-en.startMs, int64(en.peak)
		}
		s.remove(tb, i)
	case OpClientOn:
		if i == none {
			s.insert(tb, f, classOpen, nowMs, openDeadline, d)
		}
	case OpClientOff:
		if i != none {
			s.remove(tb, i)
		}
	}
	return e
}

// insert enters the entity of f in table tb, dropping the entry with the
// earliest deadline when the table is full.
func (s *memoryState) insert(tb Table, f *Fact, class uint8, nowMs, deadlineMs int64, d *Drops) int32 {
	t := s.tables[tb]
	if t.len() >= t.max {
		i := t.earliest()
		why := DropEvicted
		if t.slots[i].deadlineMs <= nowMs { // an older clock's caller expired less
			why = DropExpired
		}
		s.drop(tb, i, why, d)
	}
	lv := s.levels[f.App]
	if lv == nil {
		lv = &[NumTables]int64{}
		s.levels[f.App] = lv
	}
	lv[tb]++
	return t.insert(f.Entity, f.App, class, deadlineMs)
}

// drop removes entry i before its end, and counts why.
func (s *memoryState) drop(tb Table, i int32, why DropReason, d *Drops) {
	d[tb][why]++
	s.remove(tb, i)
}

// remove takes entry i out of table tb and of its application's levels.
func (s *memoryState) remove(tb Table, i int32) {
	t := s.tables[tb]
	app := t.slots[i].app
	if lv := s.levels[app]; lv != nil {
		lv[tb]--
		if *lv == ([NumTables]int64{}) {
			delete(s.levels, app)
		}
	}
	t.remove(i)
}

// Levels implements State. The largest channel of each application is
// found by a walk of the channel table: a scrape's work, bounded by the
// table's cap.
func (s *memoryState) Levels(_ context.Context, apps []string) ([]Levels, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	largest := map[string]int64{}
	ch := s.tables[TableChannels]
	for _, i := range ch.index {
		en := &ch.slots[i]
		largest[en.app] = max(largest[en.app], int64(en.members))
	}
	out := make([]Levels, len(apps))
	for i, app := range apps {
		if lv := s.levels[app]; lv != nil {
			out[i] = Levels{Connections: lv[TableConnections], Channels: lv[TableChannels], Clients: lv[TableClients]}
		}
		out[i].LargestChannel = largest[app]
	}
	return out, nil
}

// Sizes implements State.
func (s *memoryState) Sizes(_ context.Context, now time.Time) (Sizes, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Sizes
	for t, tb := range s.tables {
		out.Entries[t] = int64(tb.len())
	}
	out.Remembered = int64(s.seen.count)
	return out, nil
}
