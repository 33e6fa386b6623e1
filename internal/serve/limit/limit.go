// Package limit holds the server's abuse limits: per-key token buckets
// (messages and sessions per user, diagnostics per IP) and per-key counters
// of open things (connections per IP, sockets per user). Keys are whatever
// the caller chooses; memory is bounded by evicting idle keys.
package limit

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a set of token buckets, one per key. A nil *Rate allows everything.
type Rate struct {
	every time.Duration
	burst int
	idle  time.Duration

	mu    sync.Mutex
	m     map[string]*bucket
	sweep int
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRate allows n events per per for each key, in bursts of up to burst.
// n <= 0 returns nil: no limit.
func NewRate(n int, per time.Duration, burst int) *Rate {
	if n <= 0 {
		return nil
	}
	every := per / time.Duration(n)
	if burst <= 0 {
		burst = 1
	}
	// A key idle for longer than it takes to refill its bucket is
	// indistinguishable from a new one and can be forgotten.
	idle := max(every*time.Duration(burst), time.Minute)
	return &Rate{every: every, burst: burst, idle: idle, m: map[string]*bucket{}}
}

// Allow takes one token for key. When none is left it returns false and
// how long until one is.
func (r *Rate) Allow(key string) (bool, time.Duration) {
	if r == nil {
		return true, 0
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.m[key]
	if b == nil {
		r.prune(now)
		b = &bucket{lim: rate.NewLimiter(rate.Every(r.every), r.burst)}
		r.m[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// prune forgets idle keys, at most once per 1,024 new keys.
func (r *Rate) prune(now time.Time) {
	r.sweep++
	if r.sweep < 1024 {
		return
	}
	r.sweep = 0
	for k, b := range r.m {
		if now.Sub(b.seen) > r.idle {
			delete(r.m, k)
		}
	}
}

// Counter caps how many of something each key holds at once. A nil
// *Counter or a max of 0 allows everything.
type Counter struct {
	max int
	mu  sync.Mutex
	m   map[string]int
}

// NewCounter caps each key at max; max <= 0 returns nil (no cap).
func NewCounter(max int) *Counter {
	if max <= 0 {
		return nil
	}
	return &Counter{max: max, m: map[string]int{}}
}

// Acquire takes one slot for key; false when key already holds max.
func (c *Counter) Acquire(key string) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key] >= c.max {
		return false
	}
	c.m[key]++
	return true
}

// Release gives back a slot taken by Acquire.
func (c *Counter) Release(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[key]; n <= 1 {
		delete(c.m, key)
	} else {
		c.m[key] = n - 1
	}
}

// Held is how many slots key holds.
func (c *Counter) Held(key string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// IP is the client IP of a host:port remote address (the address itself when
// it has no port). Forwarded headers are not trusted for limits.
func IP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
