package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Append implements Log.
func (r *Redis) Append(ctx context.Context, data []byte, deadline time.Time) error {
	keys := []string{r.log, r.epoch, r.snapshot, r.rebuild}
	args := []any{data, deadline.UnixMilli() + r.offsetMs.Load()}
	if r.opts.WaitReplicas <= 0 {
		return appendError(appendScript.Run(ctx, r.client, keys, args...).Err())
	}
	return r.appendAndWait(ctx, keys, args)
}

// appendAndWait appends and waits for the Redis replicas on the same
// connection (WAIT counts what that connection wrote), in one pipeline.
func (r *Redis) appendAndWait(ctx context.Context, keys []string, args []any) error {
	for range 2 {
		var eval *redis.Cmd
		var wait *redis.Cmd
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			eval = appendScript.EvalSha(ctx, p, keys, args...)
			wait = p.Do(ctx, "wait", r.opts.WaitReplicas, r.opts.WaitTimeout.Milliseconds())
			return nil
		})
		if err != nil && redis.HasErrorPrefix(eval.Err(), "NOSCRIPT") {
			// The script did not run: load it, and try once more.
			if err := appendScript.Load(ctx, r.client).Err(); err != nil {
				return err
			}
			continue
		}
		if err := eval.Err(); err != nil {
			return appendError(err)
		}
		n, err := wait.Int64()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotReplicated, err)
		}
		if n < int64(r.opts.WaitReplicas) {
			return fmt.Errorf("%w: %d of %d Redis replicas acknowledged it within %s",
				ErrNotReplicated, n, r.opts.WaitReplicas, r.opts.WaitTimeout)
		}
		return nil
	}
	return errors.New("the append script could not be loaded")
}

// appendError turns the script's refusals into the Log's errors; any other
// failure leaves the outcome unknown.
func appendError(err error) error {
	switch {
	case err == nil:
		return nil
	case redis.HasErrorPrefix(err, "DEADLINE"):
		return ErrDeadline
	case redis.HasErrorPrefix(err, "REBUILDING"):
		return ErrRebuilding
	case redis.HasErrorPrefix(err, "BROKEN"):
		return fmt.Errorf("%w: %s", ErrBroken, strings.TrimPrefix(err.Error(), "BROKEN "))
	case redis.HasErrorPrefix(err, "OOM"), redis.HasErrorPrefix(err, "NOSCRIPT"), redis.HasErrorPrefix(err, "READONLY"):
		return err // refused before the script ran
	}
	return fmt.Errorf("%w: %w", ErrUncertain, err)
}

// LoadSnapshot implements Log.
func (r *Redis) LoadSnapshot(ctx context.Context) (Snapshot, error) {
	vals, err := r.client.HMGet(ctx, r.snapshot, "through", "epoch", "data").Result()
	if err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	through, _ := vals[0].(string)
	epoch, _ := vals[1].(string)
	if epoch != "" {
		s.Through = position(epoch, through)
	}
	if data, ok := vals[2].(string); ok {
		s.Data = []byte(data)
	}
	return s, nil
}

// Read implements Log.
func (r *Redis) Read(ctx context.Context, after string, wait time.Duration) ([]Entry, error) {
	epoch, prev := splitPosition(after)
	from := prev
	if from == "" {
		from = "0-0"
	}
	args := &redis.XReadArgs{Streams: []string{r.log, from}, Count: readBatch, Block: -1}
	if wait > 0 {
		args.Block = wait
	}
	streams, err := r.client.XRead(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, st := range streams {
		for _, m := range st.Messages {
			e, _ := m.Values["e"].(string)
			p, _ := m.Values["p"].(string)
			d, _ := m.Values["d"].(string)
			if epoch == "" && prev == "" {
				epoch = e // the first entry read names the epoch
			}
			if p != prev || e != epoch {
				return nil, fmt.Errorf("%w: entry %s follows %s, not %s", ErrGap, position(e, m.ID), position(e, p), position(epoch, prev))
			}
			entries = append(entries, Entry{Position: position(epoch, m.ID), Data: []byte(d)})
			prev = m.ID
		}
	}
	return entries, nil
}

// SaveSnapshot implements Log.
func (r *Redis) SaveSnapshot(ctx context.Context, through string, data []byte) error {
	epoch, id := splitPosition(through)
	return saveScript.Run(ctx, r.client, []string{r.snapshot, r.log, r.epoch}, id, data, epoch).Err()
}

// Claim implements Log.
func (r *Redis) Claim(ctx context.Context, duty string, ttl time.Duration) (bool, error) {
	won, err := claimScript.Run(ctx, r.client, []string{r.claims + duty}, r.owner, ttl.Milliseconds()).Int()
	return won == 1, err
}

// Probe implements Log. It also learns how far Redis's clock is from this
// process's, for the deadlines of appends.
func (r *Redis) Probe(ctx context.Context, pos string) (State, error) {
	posEpoch, posID := splitPosition(pos)
	sent := time.Now()
	vals, err := probeScript.Run(ctx, r.client, []string{r.epoch, r.snapshot, r.log, r.rebuild}, posID).StringSlice()
	if err != nil {
		return State{}, err
	}
	if len(vals) != 8 {
		return State{}, fmt.Errorf("probe answered %d values", len(vals))
	}
	if redisMs, err := strconv.ParseInt(vals[7], 10, 64); err == nil {
		mid := sent.Add(time.Since(sent) / 2)
		r.offsetMs.Store(redisMs - mid.UnixMilli())
	}
	p := probed{epoch: vals[0], snapEpoch: vals[1], snapThrough: vals[2], last: vals[3], lastEpoch: vals[4]}
	st := State{Epoch: p.epoch, Rebuilding: vals[6] == "1", Current: posEpoch != "" && posEpoch == p.epoch}
	st.Loss, st.Detail = p.loss()
	st.Lost = st.Loss == LossNone && st.Current && posID != "" && vals[5] != "1" && idAfter(posID, p.snapThrough)
	if st.Lost {
		st.Detail = fmt.Sprintf("entry %s, which this replica folded, is gone from the log, which ends at %s", posID, p.last)
	}
	return st, nil
}

// probed is the raw state of the log's keys.
type probed struct{ epoch, snapEpoch, snapThrough, last, lastEpoch string }

// loss says which part of the log is missing, if any.
func (p probed) loss() (Loss, string) {
	switch {
	case p.epoch == "" && p.snapEpoch == "" && p.last == "":
		return LossAll, "Redis holds none of the log's keys (flushed, evicted, or a failover to an empty Redis)"
	case p.epoch == "":
		return LossEpoch, "the key naming the log's epoch is gone"
	case p.snapEpoch == "":
		return LossSnapshot, "the log's snapshot is gone"
	case p.snapEpoch != p.epoch:
		return LossSnapshot, "the snapshot belongs to another epoch of the log"
	case p.last == "" && p.snapThrough != "":
		return LossLog, "the log's entries are gone"
	case p.last != "" && p.lastEpoch != p.epoch:
		return LossLog, "the log holds entries of another epoch"
	}
	return LossNone, ""
}

// BeginRebuild implements Log.
func (r *Redis) BeginRebuild(ctx context.Context, ttl time.Duration) (bool, error) {
	return r.client.SetNX(ctx, r.rebuild, r.owner, ttl).Result()
}

// Entries implements Log.
func (r *Redis) Entries(ctx context.Context) ([]Entry, error) {
	msgs, err := r.client.XRange(ctx, r.log, "-", "+").Result()
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e, _ := m.Values["e"].(string)
		d, _ := m.Values["d"].(string)
		entries = append(entries, Entry{Position: position(e, m.ID), Data: []byte(d)})
	}
	return entries, nil
}

// FinishRebuild implements Log.
func (r *Redis) FinishRebuild(ctx context.Context, data []byte) (string, error) {
	epoch := randomHex()
	done, err := finishRebuildScript.Run(ctx, r.client, []string{r.epoch, r.snapshot, r.log, r.rebuild},
		r.owner, epoch, data).Int()
	if err != nil {
		return "", err
	}
	if done != 1 {
		return "", errors.New("the right to rebuild the log expired before the rebuild was done")
	}
	return position(epoch, ""), nil
}
