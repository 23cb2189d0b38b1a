// Package redisstate keeps the application tracker's state (the tables of
// connections, channels and clients between their start and their end, and
// the memory of the events counted) in the Redis the replicas share, so
// that two ends reaching different replicas pair up, and an event retried
// to another replica is still a duplicate: replicas summed over instances
// count as one exporter does.
//
// Each body is one Lua script (apply.lua), atomic in Redis; it follows the
// rules of callstate.State, as the in-memory State does, and package
// statetest holds both to them. Keys, under the prefix:
//
//	seen:<minute>     set of the events of that minute of event time,
//	                  expiring once they are too old to be accepted
//	t:<table>         hash of the entries of a table (connections,
//	                  channels, clients): key -> msgpack [app, start,
//	                  up, members, peak, deadline]
//	d:<table>         sorted set of the same keys by deadline (ms)
//	lv                hash "<table>:<app>" -> entries held
//	sz:<app>          sorted set of an application's channels by clients
//
// Everything is bounded by callstate.Limits: the tables by their caps,
// the memory by its cap per minute, and every entry by its deadline.
package redisstate

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
)

//go:embed apply.lua
var applySource string

var applyScript = redis.NewScript(applySource)

// KeySuffix is what the State's keys add to the fleet's prefix
// (--storage.redis-prefix), so that the two never meet.
const KeySuffix = "apps:"

// rememberSlack keeps a minute's memory this much longer than needed, in
// case one replica's clock runs ahead of another's.
const rememberSlack = 5 * time.Minute

// expireLimit bounds the expired entries one script drops per table, so
// that a script stays short when many expire at once; what is left is
// gone all the same (a lookup drops it) and goes at the next sweep.
const expireLimit = 1000

// State is an callstate.State in a shared Redis.
type State struct {
	client  redis.UniversalClient
	prefix  string
	limits  callstate.Limits
	timeout time.Duration
	// fixed are the script's arguments that do not change.
	fixed []any
}

var _ callstate.State = (*State)(nil)

// DefaultTimeout bounds each call when New is given none.
const DefaultTimeout = 2 * time.Second

// New returns the State under prefix (the fleet's prefix and KeySuffix)
// of client, bounded by limits (give every replica the same); each call
// takes at most timeout (DefaultTimeout when 0), a webhook's deadline
// permitting.
func New(client redis.UniversalClient, prefix string, limits callstate.Limits, timeout time.Duration) *State {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	l := limits.WithDefaults()
	s := &State{client: client, prefix: prefix, limits: l, timeout: timeout}
	s.fixed = []any{prefix, 0, l.PendingTTL.Milliseconds(), l.OpenTTL.Milliseconds(),
		l.MaxEntries[callstate.TableConnections], l.MaxEntries[callstate.TableChannels], l.MaxEntries[callstate.TableClients],
		l.PerBucket(), (l.MaxEventAge + rememberSlack).Milliseconds(), expireLimit}
	return s
}

// run runs the script over facts at now, filling effects.
func (s *State) run(ctx context.Context, facts []callstate.Fact, now time.Time, effects []callstate.Effect) (callstate.Drops, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := make([]any, 0, len(s.fixed)+1+5*len(facts))
	args = append(args, s.fixed...)
	args[1] = now.UnixMilli()
	args = append(args, len(facts))
	for i := range facts {
		f := &facts[i]
		args = append(args, int(f.Op), f.App, string(f.Entity[:]), string(f.Seen[:]), f.Ms)
	}
	res, err := applyScript.Run(ctx, s.client, nil, args...).Int64Slice()
	var drops callstate.Drops
	if err != nil {
		return drops, false, err
	}
	if len(res) != 4*len(facts)+7 {
		return drops, false, fmt.Errorf("the apply script answered %d numbers for %d events", len(res), len(facts))
	}
	for i := range facts {
		r := res[4*i : 4*i+4]
		effects[i] = callstate.Effect{Duplicate: r[0] == 1, Unremembered: r[0] == 2, SpanMs: r[1], Peak: r[2], Phase: callstate.Phase(r[3])}
	}
	d := res[4*len(facts):]
	for t := range callstate.NumTables {
		drops[t][callstate.DropExpired] = uint64(d[2*int(t)])
		drops[t][callstate.DropEvicted] = uint64(d[2*int(t)+1])
	}
	return drops, d[6] == 1, nil
}

// Apply implements callstate.State.
func (s *State) Apply(ctx context.Context, facts []callstate.Fact, now time.Time, effects []callstate.Effect) (callstate.Drops, error) {
	drops, _, err := s.run(ctx, facts, now, effects)
	return drops, err
}

// Sweep implements callstate.State: scripts without facts, until
// nothing expired is left.
func (s *State) Sweep(ctx context.Context, now time.Time) (callstate.Drops, error) {
	var drops callstate.Drops
	for {
		d, more, err := s.run(ctx, nil, now, nil)
		drops.Add(d)
		if err != nil || !more {
			return drops, err
		}
	}
}

// Levels implements callstate.State, in one round trip.
func (s *State) Levels(ctx context.Context, apps []string) ([]callstate.Levels, error) {
	out := make([]callstate.Levels, len(apps))
	if len(apps) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	fields := make([]string, 0, 3*len(apps))
	for _, app := range apps {
		for t := range callstate.NumTables {
			fields = append(fields, strconv.Itoa(int(t)+1)+":"+app)
		}
	}
	pipe := s.client.Pipeline()
	counts := pipe.HMGet(ctx, s.prefix+"lv", fields...)
	largest := make([]*redis.ZSliceCmd, len(apps))
	for i, app := range apps {
		largest[i] = pipe.ZRevRangeWithScores(ctx, s.prefix+"sz:"+app, 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	values := counts.Val()
	for i := range apps {
		n := func(t callstate.Table) int64 {
			v, _ := values[3*i+int(t)].(string)
			c, _ := strconv.ParseInt(v, 10, 64)
			return c
		}
		out[i] = callstate.Levels{Connections: n(callstate.TableConnections), Channels: n(callstate.TableChannels),
			Clients: n(callstate.TableClients)}
		if z := largest[i].Val(); len(z) > 0 {
			out[i].LargestChannel = int64(z[0].Score)
		}
	}
	return out, nil
}

// Sizes implements callstate.State, in one round trip: the tables'
// lengths and the memory of the minutes an event may still be in.
func (s *State) Sizes(ctx context.Context, now time.Time) (callstate.Sizes, error) {
	var out callstate.Sizes
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pipe := s.client.Pipeline()
	lens := make([]*redis.IntCmd, callstate.NumTables)
	for t := range callstate.NumTables {
		lens[t] = pipe.HLen(ctx, s.prefix+"t:"+t.String())
	}
	// The minutes whose events may still be accepted: those the in-memory
	// State keeps (Redis keeps them rememberSlack longer).
	l := s.limits
	first := callstate.BucketOf(now.Add(-l.MaxEventAge).UnixMilli())
	last := callstate.BucketOf(now.Add(l.MaxFutureSkew).UnixMilli())
	var cards []*redis.IntCmd
	for b := first; b <= last; b++ {
		cards = append(cards, pipe.SCard(ctx, s.prefix+"seen:"+strconv.FormatInt(b, 10)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return out, err
	}
	for t := range callstate.NumTables {
		out.Entries[t] = lens[t].Val()
	}
	for _, c := range cards {
		out.Remembered += c.Val()
	}
	return out, nil
}
