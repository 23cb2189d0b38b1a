package storage

import "github.com/redis/go-redis/v9"

// NewRedisClient returns a client of the Redis of rawURL, read as
// --storage.redis-url is for the fleet's log (redis:// or rediss://,
// Sentinels with master_name, no retries, the callers' deadlines bounding
// every call), for other state shared by replicas in the same Redis: the
// application tracker's. Only a malformed URL is an error.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	client, _, err := newRedisClient(rawURL)
	return client, err
}
