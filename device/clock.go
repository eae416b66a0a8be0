package device

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock is the time the caches use for expiry: monotonic
// nanoseconds since it started, refreshed every period by a timer, so the
// request path reads an atomic instead of the clock (a clock read costs
// about as much as the rest of a cache hit). Its reading lags real time by
// at most one period, so a cache entry lives up to CacheTTL + period.
type coarseClock struct {
	base   time.Time
	period time.Duration
	now    atomic.Int64
	live   atomic.Bool // false once stopped: read the clock directly

	mu    sync.Mutex
	timer *time.Timer
}

func newCoarseClock(period time.Duration) *coarseClock {
	c := &coarseClock{base: time.Now(), period: period}
	c.live.Store(true)
	c.mu.Lock()
	c.timer = time.AfterFunc(period, c.tick)
	c.mu.Unlock()
	return c
}

func (c *coarseClock) tick() {
	c.now.Store(int64(time.Since(c.base)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live.Load() {
		c.timer.Reset(c.period)
	}
}

func (c *coarseClock) read() int64 {
	if c.live.Load() {
		return c.now.Load()
	}
	return int64(time.Since(c.base))
}

func (c *coarseClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live.Store(false)
	c.timer.Stop()
}
