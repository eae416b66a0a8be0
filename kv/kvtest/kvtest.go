// Package kvtest is the conformance suite for [kv.Store] implementations.
// The in-memory store runs it in this module; the Redis and PostgreSQL
// stores run it unchanged against real servers.
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, kvtest.Harness{New: func(t *testing.T) (kv.Store, func(time.Duration)) {
//			clock := kvtest.NewClock()
//			return kv.NewMemory(kv.MemoryConfig{Now: clock.Now}), clock.Advance
//		}})
//	}
package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
)

// Harness tells the suite how to make stores.
type Harness struct {
	// New returns an empty store (or one whose keys cannot collide with
	// other tests' keys) and a function that moves the store's notion of
	// time forward by d. Backends that use the server's clock may sleep in
	// advance; the suite keeps the durations it asks for short.
	New func(t *testing.T) (store kv.Store, advance func(d time.Duration))

	// TTL is the expiry the suite uses when it wants keys to expire during
	// a test. Zero means one minute, fine for a fake clock; backends that
	// sleep in advance set something like 200ms.
	TTL time.Duration
}

// Clock is a fake clock for stores that accept an injected time source.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	ttl := h.TTL
	if ttl == 0 {
		ttl = time.Minute
	}
	long := time.Hour
	ctx := context.Background()
	key := func(t *testing.T, name string) string { return "kvtest:" + t.Name() + ":" + name }

	t.Run("GetMissing", func(t *testing.T) {
		s, _ := h.New(t)
		_, err := s.Get(ctx, key(t, "missing"))
		require.ErrorIs(t, err, kv.ErrNotFound)
	})

	t.Run("SetGet", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		val := []byte{0, 1, 2, 0xff, 'a'}
		v, err := s.Set(ctx, k, val, long)
		require.NoError(t, err)
		require.NotZero(t, v)
		val[0] = 9 // the store must have copied it
		it, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, []byte{0, 1, 2, 0xff, 'a'}, it.Value)
		require.Equal(t, v, it.Version)
		require.False(t, it.ExpiresAt.IsZero())
		it.Value[1] = 9 // and must not share its copy with callers
		it2, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, byte(1), it2.Value[1])

		v2, err := s.Set(ctx, k, []byte("second"), long)
		require.NoError(t, err)
		require.NotEqual(t, v, v2)
		it, err = s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, []byte("second"), it.Value)
	})

	t.Run("EmptyAndLargeValues", func(t *testing.T) {
		s, _ := h.New(t)
		_, err := s.Set(ctx, key(t, "empty"), nil, long)
		require.NoError(t, err)
		it, err := s.Get(ctx, key(t, "empty"))
		require.NoError(t, err)
		require.Empty(t, it.Value)
		big := bytes.Repeat([]byte{0xab}, 1<<20)
		_, err = s.Set(ctx, key(t, "big"), big, long)
		require.NoError(t, err)
		it, err = s.Get(ctx, key(t, "big"))
		require.NoError(t, err)
		require.Equal(t, big, it.Value)
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		_, err := s.Set(ctx, k, []byte("x"), 0)
		require.ErrorIs(t, err, kv.ErrInvalidTTL)
		_, err = s.Set(ctx, k, []byte("x"), -time.Second)
		require.ErrorIs(t, err, kv.ErrInvalidTTL)
		_, err = s.CompareAndSet(ctx, k, []byte("x"), 0, 0)
		require.ErrorIs(t, err, kv.ErrInvalidTTL)
		_, err = s.Increment(ctx, k, 1, 0)
		require.ErrorIs(t, err, kv.ErrInvalidTTL)
		_, err = s.Get(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound, "a refused write must not store anything")
		_, err = s.Set(ctx, "", []byte("x"), long)
		require.ErrorIs(t, err, kv.ErrInvalidKey)
		_, err = s.Get(ctx, string(make([]byte, kv.MaxKeyLen+1)))
		require.ErrorIs(t, err, kv.ErrInvalidKey)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s, _ := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		k := key(t, "k")
		_, err := s.Set(cctx, k, []byte("x"), long)
		require.Error(t, err)
		_, err = s.Get(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound)
		_, err = s.Consume(cctx, k)
		require.Error(t, err)
		require.NotErrorIs(t, err, kv.ErrNotFound)
	})

	t.Run("CompareAndSet", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		v1, err := s.CompareAndSet(ctx, k, []byte("a"), long, 0)
		require.NoError(t, err)
		_, err = s.CompareAndSet(ctx, k, []byte("b"), long, 0)
		require.ErrorIs(t, err, kv.ErrConflict, "version 0 means create only")
		v2, err := s.CompareAndSet(ctx, k, []byte("b"), long, v1)
		require.NoError(t, err)
		require.NotEqual(t, v1, v2)
		_, err = s.CompareAndSet(ctx, k, []byte("c"), long, v1)
		require.ErrorIs(t, err, kv.ErrConflict, "stale version")
		it, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, []byte("b"), it.Value)
		_, err = s.CompareAndSet(ctx, key(t, "absent"), []byte("x"), long, 12345)
		require.ErrorIs(t, err, kv.ErrConflict, "a version on an absent key")
	})

	t.Run("VersionsNeverReused", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		seen := map[uint64]bool{}
		for i := 0; i < 20; i++ {
			v, err := s.Set(ctx, k, []byte("x"), long)
			require.NoError(t, err)
			require.False(t, seen[v], "version %d reused", v)
			seen[v] = true
			require.NoError(t, s.Delete(ctx, k))
			_, err = s.CompareAndSet(ctx, k, []byte("y"), long, v)
			require.ErrorIs(t, err, kv.ErrConflict, "a version from before a delete must not match")
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		require.NoError(t, s.Delete(ctx, k), "deleting a missing key is not an error")
		_, err := s.Set(ctx, k, []byte("x"), long)
		require.NoError(t, err)
		require.NoError(t, s.Delete(ctx, k))
		_, err = s.Get(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound)
	})

	t.Run("Consume", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		_, err := s.Consume(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound)
		v, err := s.Set(ctx, k, []byte("once"), long)
		require.NoError(t, err)
		it, err := s.Consume(ctx, k)
		require.NoError(t, err)
		require.Equal(t, []byte("once"), it.Value)
		require.Equal(t, v, it.Version)
		_, err = s.Consume(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound)
		_, err = s.Get(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound)
	})

	t.Run("ConcurrentConsumeExactlyOne", func(t *testing.T) {
		s, _ := h.New(t)
		for round := 0; round < 5; round++ {
			k := key(t, fmt.Sprint(round))
			_, err := s.Set(ctx, k, []byte("prize"), long)
			require.NoError(t, err)
			var wins, misses atomic.Int32
			var other atomic.Value
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := s.Consume(ctx, k)
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, kv.ErrNotFound):
						misses.Add(1)
					default:
						other.Store(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			require.Nil(t, other.Load())
			require.Equal(t, int32(1), wins.Load())
			require.Equal(t, int32(99), misses.Load())
		}
	})

	t.Run("ConcurrentCompareAndSetExactlyOne", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		v, err := s.Set(ctx, k, []byte("0"), long)
		require.NoError(t, err)
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				if _, err := s.CompareAndSet(ctx, k, []byte(fmt.Sprint(i)), long, v); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, kv.ErrConflict) {
					t.Errorf("unexpected error: %v", err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("ConcurrentCreateExactlyOne", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.CompareAndSet(ctx, k, []byte("mine"), long, 0); err == nil {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("Increment", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		n, err := s.Increment(ctx, k, 1, long)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = s.Increment(ctx, k, 5, long)
		require.NoError(t, err)
		require.Equal(t, int64(6), n)
		n, err = s.Increment(ctx, k, -10, long)
		require.NoError(t, err)
		require.Equal(t, int64(-4), n)
		it, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, "-4", string(it.Value))

		_, err = s.Set(ctx, key(t, "text"), []byte("not a number"), long)
		require.NoError(t, err)
		_, err = s.Increment(ctx, key(t, "text"), 1, long)
		require.ErrorIs(t, err, kv.ErrNotCounter)
		it, err = s.Get(ctx, key(t, "text"))
		require.NoError(t, err)
		require.Equal(t, "not a number", string(it.Value), "a refused increment loses no data")
	})

	t.Run("ConcurrentIncrementNeverLost", func(t *testing.T) {
		s, _ := h.New(t)
		k := key(t, "k")
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Increment(ctx, k, 1, long); err != nil {
					t.Errorf("increment: %v", err)
				}
			}()
		}
		wg.Wait()
		it, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, "100", string(it.Value))
	})

	t.Run("Expiry", func(t *testing.T) {
		s, advance := h.New(t)
		short, keep := key(t, "short"), key(t, "keep")
		_, err := s.Set(ctx, short, []byte("x"), ttl)
		require.NoError(t, err)
		_, err = s.Set(ctx, keep, []byte("y"), long)
		require.NoError(t, err)
		_, err = s.Get(ctx, short)
		require.NoError(t, err)

		advance(ttl + ttl/2)
		_, err = s.Get(ctx, short)
		require.ErrorIs(t, err, kv.ErrNotFound)
		_, err = s.Consume(ctx, short)
		require.ErrorIs(t, err, kv.ErrNotFound)
		_, err = s.CompareAndSet(ctx, short, []byte("again"), long, 0)
		require.NoError(t, err, "an expired key counts as absent")
		_, err = s.Get(ctx, keep)
		require.NoError(t, err)
	})

	t.Run("ExpiryOfConsumable", func(t *testing.T) {
		s, advance := h.New(t)
		k := key(t, "nonce")
		_, err := s.Set(ctx, k, []byte("x"), ttl)
		require.NoError(t, err)
		advance(ttl + ttl/2)
		_, err = s.Consume(ctx, k)
		require.ErrorIs(t, err, kv.ErrNotFound, "an expired single-use value cannot be consumed")
	})

	t.Run("IncrementWindow", func(t *testing.T) {
		s, advance := h.New(t)
		k := key(t, "window")
		_, err := s.Increment(ctx, k, 1, ttl)
		require.NoError(t, err)
		advance(ttl / 2)
		n, err := s.Increment(ctx, k, 1, long) // the second ttl must not extend the window
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		advance(ttl)
		n, err = s.Increment(ctx, k, 1, ttl)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "a counter restarts after its window")
	})

	t.Run("SetReplacesExpiry", func(t *testing.T) {
		s, advance := h.New(t)
		k := key(t, "k")
		_, err := s.Set(ctx, k, []byte("x"), ttl)
		require.NoError(t, err)
		_, err = s.Set(ctx, k, []byte("y"), long)
		require.NoError(t, err)
		advance(ttl + ttl/2)
		it, err := s.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, []byte("y"), it.Value)
	})
}
