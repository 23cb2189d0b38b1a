package callstate

import (
	"encoding/binary"
	"math"
)

// remembered is the memory of the events counted, by the minute of their
// event time: a minute is forgotten as a whole once every event time in
// it is too old to be accepted, so that a retried or replayed event is
// recognised as long as it could be counted. Each minute holds at most
// perBucket events (0: no bound), so that the whole stays bounded. An
// event is remembered by the first 8 bytes of its Key (of SHA-256): two
// events of a minute share them once in 10^10 minutes of a million
// events, and none can be made to on purpose.
type remembered struct {
	limits    Limits
	perBucket int
	buckets   map[int64]map[uint64]struct{}
	// nextExpiryMs is when the oldest minute may go.
	nextExpiryMs int64
	count        int
}

func newRemembered(l Limits) *remembered {
	return &remembered{limits: l, perBucket: int(l.PerBucket()), buckets: map[int64]map[uint64]struct{}{}, nextExpiryMs: math.MaxInt64}
}

// add remembers event k of event time ms. dup says it was remembered
// already; kept is false when its minute was full.
func (r *remembered) add(key Key, ms int64) (dup, kept bool) {
	k := binary.LittleEndian.Uint64(key[:8])
	b := BucketOf(ms)
	set := r.buckets[b]
	if set == nil {
		set = map[uint64]struct{}{}
		r.buckets[b] = set
		r.nextExpiryMs = min(r.nextExpiryMs, r.limits.BucketExpiresMs(b))
	}
	if _, ok := set[k]; ok {
		return true, true
	}
	if r.perBucket > 0 && len(set) >= r.perBucket {
		return false, false
	}
	set[k] = struct{}{}
	r.count++
	return false, true
}

// expire forgets the minutes whose events are all too old at nowMs.
func (r *remembered) expire(nowMs int64) {
	if nowMs < r.nextExpiryMs {
		return
	}
	r.nextExpiryMs = math.MaxInt64
	for b, set := range r.buckets {
		if at := r.limits.BucketExpiresMs(b); at <= nowMs {
			r.count -= len(set)
			delete(r.buckets, b)
		} else {
			r.nextExpiryMs = min(r.nextExpiryMs, at)
		}
	}
}
