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
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix namespaces the exporter's keys in a shared Redis.
const DefaultRedisPrefix = "liveswitch_exporter:"

// readBatch bounds the entries one Read returns.
const readBatch = 512

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	// Prefix namespaces the keys (DefaultRedisPrefix when empty).
	Prefix string
	// Owner names this replica in claims (a host name; a random suffix
	// keeps two processes apart).
	Owner  string
	Logger *slog.Logger
	// WaitReplicas, when above 0, makes every append wait (Redis WAIT) until
	// that many Redis replicas acknowledged it, for up to WaitTimeout;
	// fewer is ErrNotReplicated. A failover then cannot lose what was
	// acknowledged.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// Redis is a Log kept in a Redis stream, shared by every replica that is
// given the same Redis and prefix. Appends are acknowledged once Redis has
// accepted them (and, with WaitReplicas, once its replicas have); how
// durable that is depends on Redis's persistence settings (appendonly yes
// with appendfsync always survives a crash of Redis itself).
type Redis struct {
	client   redis.UniversalClient
	sentinel *redis.FailoverOptions // nil unless the URL names Sentinels
	opts     RedisOptions
	log      string // stream of entries
	epoch    string // name of the log's current life
	snapshot string // hash: through, epoch, data
	claims   string // prefix of the duty claims
	rebuild  string // held while a replica rebuilds the log
	replicas string // hash: each replica's presence (Probe)
	owner    string // this replica's name in claims, rebuilds and presences
	// offsetMs is Redis's clock minus this process's, as last probed, so
	// that a deadline can be given to Redis in its own clock.
	offsetMs atomic.Int64
}

// OpenRedis connects to the Redis of rawURL (redis:// or rediss://; with a
// master_name query parameter the URL names Sentinels, as go-redis's
// ParseFailoverURL reads it). Only a malformed URL is an error: an
// unreachable Redis is reported by the calls, which the caller retries.
func OpenRedis(rawURL string, opts RedisOptions) (*Redis, error) {
	if opts.Logger != nil {
		redis.SetLogger(redisLogger{opts.Logger})
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	r := &Redis{opts: opts, owner: opts.Owner + "/" + randomHex()}
	var err error
	if r.client, r.sentinel, err = newRedisClient(rawURL); err != nil {
		return nil, err
	}
	p := opts.Prefix
	r.log, r.epoch, r.snapshot, r.claims, r.rebuild, r.replicas = p+"log", p+"epoch", p+"snapshot", p+"claim:", p+"rebuild", p+"replicas"
	return r, nil
}

// Name is how this replica is named in Redis (claims, rebuild lock,
// presence), for its log lines.
func (r *Redis) Name() string { return r.owner }

func newRedisClient(rawURL string) (redis.UniversalClient, *redis.FailoverOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--storage.redis-url: %w", redactURLError(err))
	}
	q := u.Query()
	// A retried append may have run already and would be appended twice;
	// LiveSwitch retries a failed delivery, so the exporter does not.
	if q.Has("max_retries") {
		return nil, nil, errors.New("--storage.redis-url: max_retries is not accepted: a retried append could be applied twice (LiveSwitch retries the webhook instead)")
	}
	q.Set("max_retries", "-1")
	u.RawQuery = q.Encode()
	if q.Has("master_name") {
		opts, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, nil, fmt.Errorf("--storage.redis-url (Sentinel): %w", err)
		}
		// Deadlines of the exporter's contexts bound every call, so that a
		// hung Redis is noticed within them.
		opts.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(opts), opts, nil
	}
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("--storage.redis-url: %w", err)
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil, nil
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
// log is another entry. "<epoch>/" is the start of an epoch.
func position(epoch, id string) string { return epoch + "/" + id }

func splitPosition(pos string) (epoch, id string) {
	epoch, id, _ = strings.Cut(pos, "/")
	return epoch, id
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close implements Log.
func (r *Redis) Close() error { return r.client.Close() }

// redisLogger sends go-redis's own messages (dial failures the exporter
// reports anyway) to the exporter's log at debug level.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
