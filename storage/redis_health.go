package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Memory is what Redis says of its memory and what it does when full.
type Memory struct {
	// Policy is maxmemory-policy. With allkeys-* Redis evicts any key, the
	// log's included, when it is full; the exporter's keys have no TTL, so
	// noeviction and volatile-* never evict them.
	Policy string
	// Used and Max are in bytes; Max 0 means no limit.
	Used, Max int64
}

// Evicts reports whether Redis may evict the exporter's keys.
func (m Memory) Evicts() bool { return strings.HasPrefix(m.Policy, "allkeys-") }

// Full reports whether Redis refuses writes for lack of memory.
func (m Memory) Full() bool { return m.Max > 0 && m.Used >= m.Max && !m.Evicts() }

// Memory reads INFO memory (which managed Redis services allow where CONFIG
// is disabled).
func (r *Redis) Memory(ctx context.Context) (Memory, error) {
	info, err := r.client.Info(ctx, "memory").Result()
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "maxmemory_policy":
			m.Policy = v
		case "used_memory":
			m.Used, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory":
			m.Max, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if m.Policy == "" {
		return m, errors.New("INFO memory does not name the maxmemory policy")
	}
	return m, nil
}

// Explain returns err with what the Sentinels say when the URL names them:
// go-redis reports an unknown master name as "all sentinels are
// unreachable", which sends an operator the wrong way.
func (r *Redis) Explain(ctx context.Context, err error) error {
	if r.sentinel == nil || err == nil {
		return err
	}
	var answered, unknown []string
	for _, addr := range r.sentinel.SentinelAddrs {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: r.sentinel.SentinelUsername,
			Password: r.sentinel.SentinelPassword, TLSConfig: r.sentinel.TLSConfig, MaxRetries: -1})
		_, serr := s.GetMasterAddrByName(ctx, r.sentinel.MasterName).Result()
		_ = s.Close()
		switch {
		case errors.Is(serr, redis.Nil):
			unknown = append(unknown, addr)
		case serr == nil:
			answered = append(answered, addr)
		}
	}
	if len(unknown) > 0 && len(answered) == 0 {
		return fmt.Errorf("the Sentinels at %s know no master named %q (check master_name in --storage.redis-url)",
			strings.Join(unknown, ", "), r.sentinel.MasterName)
	}
	return err
}
