package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// appendError turns the script's refusals into the Log's errors. Any other
// answer Redis gave is a refusal too (the script writes last, so a script
// that failed wrote nothing): ErrRefused, saying what Redis answered. A
// call that never reached Redis is a plain error; only an answer that was
// lost leaves the outcome unknown (ErrUncertain).
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
	case answered(err):
		return fmt.Errorf("%w: Redis answered: %w", ErrRefused, err)
	case notSent(err):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUncertain, err)
}

// answered reports whether err is an answer of Redis (an error reply),
// not a failure to get one.
func answered(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

// notSent reports whether err says that the call never left: no
// connection could be made or taken from the pool.
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// refusal says what Redis answered when it refused a call; other errors
// (unreachable, timed out) are returned as they are.
func refusal(what string, err error) error {
	if err != nil && answered(err) {
		return fmt.Errorf("%s: Redis answered: %w", what, err)
	}
	return err
}

// LoadSnapshot implements Log.
func (r *Redis) LoadSnapshot(ctx context.Context) (Snapshot, error) {
	vals, err := r.client.HMGet(ctx, r.snapshot, "through", "epoch", "data").Result()
	if err != nil {
		return Snapshot{}, refusal("reading the snapshot", err)
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
		return nil, refusal("reading the log", err)
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
	return refusal("saving the snapshot", saveScript.Run(ctx, r.client, []string{r.snapshot, r.log, r.epoch}, id, data, epoch).Err())
}

// Claim implements Log.
func (r *Redis) Claim(ctx context.Context, duty string, ttl time.Duration) (bool, error) {
	won, err := claimScript.Run(ctx, r.client, []string{r.claims + duty}, r.owner, ttl.Milliseconds()).Int()
	return won == 1, refusal("claiming "+duty, err)
}

// BeginRebuild implements Log.
func (r *Redis) BeginRebuild(ctx context.Context, ttl time.Duration) (bool, error) {
	won, err := beginRebuildScript.Run(ctx, r.client, []string{r.rebuild}, r.owner, ttl.Milliseconds()).Int()
	return won == 1, refusal("taking the rebuild lock", err)
}

// CancelRebuild implements Log.
func (r *Redis) CancelRebuild(ctx context.Context) error {
	return cancelRebuildScript.Run(ctx, r.client, []string{r.rebuild}, r.owner).Err()
}

// DiscardSnapshot implements Log: the snapshot is renamed
// <prefix>snapshot:unreadable, kept a day.
func (r *Redis) DiscardSnapshot(ctx context.Context, through string) error {
	_, id := splitPosition(through)
	err := discardScript.Run(ctx, r.client, []string{r.snapshot, r.snapshot + ":unreadable"}, id,
		(24 * time.Hour).Milliseconds()).Err()
	return refusal("setting the unreadable snapshot aside", err)
}

// Entries implements Log.
func (r *Redis) Entries(ctx context.Context) ([]Entry, error) {
	msgs, err := r.client.XRange(ctx, r.log, "-", "+").Result()
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return nil, nil // the log's key holds something else: its entries are lost
	}
	if err != nil {
		return nil, refusal("reading the log", err)
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
func (r *Redis) FinishRebuild(ctx context.Context, data []byte, from string) (string, error) {
	epoch := nextEpoch(from)
	done, err := finishRebuildScript.Run(ctx, r.client, []string{r.epoch, r.snapshot, r.log, r.rebuild},
		r.owner, epoch, data).Int()
	if err != nil {
		return "", refusal("finishing the rebuild", err)
	}
	if done != 1 {
		return "", errors.New("the right to rebuild the log expired before the rebuild was done")
	}
	return position(epoch, ""), nil
}
