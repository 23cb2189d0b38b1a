package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix namespaces the exporter's keys in a shared Redis.
const DefaultRedisPrefix = "liveswitch_exporter:"

// readBatch bounds the entries one Read returns.
const readBatch = 512

// appendScript appends one entry and records in it the entry before it and
// the log's epoch, in one atomic step. A reader that finds an entry whose
// predecessor is not the entry it read last knows that entries are missing;
// one whose epoch differs knows that Redis lost the log and began another
// (stream ids are times, so the new ids may repeat the old ones).
var appendScript = redis.NewScript(`
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[2], epoch)
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = ''
if #last > 0 then prev = last[1][1] end
return redis.call('XADD', KEYS[1], '*', 'e', epoch, 'p', prev, 'd', ARGV[1])
`)

// saveScript replaces the snapshot unless a newer one exists or it belongs to
// an earlier epoch, and trims the entries it covers (the entry at its position stays, so that the next entry
// still names a predecessor readers know).
var saveScript = redis.NewScript(`
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return 0 end
local cur = redis.call('HGET', KEYS[1], 'through')
if cur and cur ~= '' and not older(cur, ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'through', ARGV[1], 'epoch', ARGV[3], 'data', ARGV[2])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1])
return 1
`)

// claimScript gives a duty to the caller if nobody holds it, or keeps it
// with the caller who holds it: the same replica goes on doing it while it
// lives, and another takes over within ttl once it is gone.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// Redis is a Log kept in a Redis stream, shared by every replica that is
// given the same Redis and prefix. Appends are acknowledged once Redis has
// accepted them; how durable that is depends on Redis's persistence settings
// (appendonly yes with appendfsync always survives a crash of Redis itself).
type Redis struct {
	client   redis.UniversalClient
	log      string // stream of entries
	epoch    string // name of the log's current life
	snapshot string // hash: through, epoch, data
	claims   string // prefix of the duty claims
	owner    string // this replica's name in claims
}

// OpenRedis connects to the Redis of rawURL (redis:// or rediss://; with a
// master_name query parameter the URL names Sentinels, as go-redis's
// ParseFailoverURL reads it). owner names this replica in claims (a host
// name; a random suffix keeps two processes apart). Only a malformed URL is
// an error: an unreachable Redis is reported by the calls, which the caller
// retries.
func OpenRedis(rawURL, prefix, owner string, logger *slog.Logger) (*Redis, error) {
	if logger != nil {
		redis.SetLogger(redisLogger{logger})
	}
	client, err := newRedisClient(rawURL)
	if err != nil {
		return nil, err
	}
	return &Redis{
		client: client, log: prefix + "log", epoch: prefix + "epoch", snapshot: prefix + "snapshot",
		claims: prefix + "claim:", owner: owner + "/" + randomHex(),
	}, nil
}

func newRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--storage.redis-url: %w", redactURLError(err))
	}
	q := u.Query()
	// A retried append may have run already and would be appended twice;
	// LiveSwitch retries a failed delivery, so the exporter does not.
	if !q.Has("max_retries") {
		q.Set("max_retries", "-1")
		u.RawQuery = q.Encode()
	}
	if q.Has("master_name") {
		opts, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("--storage.redis-url (Sentinel): %w", err)
		}
		return redis.NewFailoverClient(opts), nil
	}
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("--storage.redis-url: %w", err)
	}
	return redis.NewClient(opts), nil
}

// redactURLError drops the URL, which may hold a password, from a parse error.
func redactURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// A position is "<epoch>/<stream id>": the same id in another epoch of the
// log is another entry.
func position(epoch, id string) string { return epoch + "/" + id }

func splitPosition(pos string) (epoch, id string) {
	epoch, id, _ = strings.Cut(pos, "/")
	return epoch, id
}

// Append implements Log.
func (r *Redis) Append(ctx context.Context, data []byte) error {
	return appendScript.Run(ctx, r.client, []string{r.log, r.epoch}, data, randomHex()).Err()
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
	if through != "" {
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

// Close implements Log.
func (r *Redis) Close() error { return r.client.Close() }

// redisLogger sends go-redis's own messages (dial failures the exporter
// reports anyway) to the exporter's log at debug level.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
