package monitor

import (
	"sync"
	"time"
)

// DefaultHostCacheTTL is how long HostSource keeps a reading that changes rarely:
// kernel settings (overcommit, THP), a process's cgroup and AnonHugePages, user and
// group names. Profiling the tick showed these were most of its cost
// (smaps_rollup alone, which makes the kernel walk every mapping of Redis, was half),
// while none of them decides anything that cannot wait this long.
const DefaultHostCacheTTL = 30 * time.Second

// hostCacheMax bounds the cache: keys carry pids, and a restarted Redis gets a new
// one, so expired entries are dropped once the map grows past this.
const hostCacheMax = 256

// ttlCache remembers the result (value and error) of a load for ttl. It is safe for
// concurrent use, because one HostSource serves every instance.
type ttlCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	v   any
	err error
	at  time.Time
}

// cached returns the value stored under key when it is younger than the TTL, else
// runs load and stores its result. A ttl <= 0 disables caching.
func cached[T any](c *ttlCache, key string, load func() (T, error)) (T, error) {
	if c == nil || c.ttl <= 0 {
		return load()
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl && now.Sub(e.at) >= 0 {
		v, _ := e.v.(T)
		return v, e.err
	}
	// Loaded without the lock: two instances may load the same key at once, which
	// costs one extra read and is cheaper than serialising every host read.
	v, err := load()
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cacheEntry{}
	}
	if len(c.m) >= hostCacheMax {
		for k, old := range c.m {
			if now.Sub(old.at) >= c.ttl {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = cacheEntry{v: v, err: err, at: now}
	c.mu.Unlock()
	return v, err
}
