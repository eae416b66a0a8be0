package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	kvtest.Run(t, kvtest.Harness{
		New: func(t *testing.T) (kv.Store, func(time.Duration)) {
			// Redis expires keys by its own clock: advancing time is
			// waiting for it.
			return newStore(t, c), time.Sleep
		},
		TTL: 200 * time.Millisecond,
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := New(nil, Config{})
	require.Error(t, err)

	c := goredis.NewClient(&goredis.Options{Addr: closedAddr(t)})
	defer c.Close()
	s, err := New(c, Config{})
	require.NoError(t, err)
	require.Equal(t, DefaultPrefix, s.prefix, "the zero Config uses the default prefix")
}

func TestKeyLayout(t *testing.T) {
	t.Parallel()
	s := &Store{prefix: "app:"}
	for _, key := range []string{"a", "session:123", "{weird}", "}", strings.Repeat("x", kv.MaxKeyLen)} {
		ks := s.keys(key)
		entry, counter := ks[0], ks[1]
		tag, rest, ok := strings.Cut(strings.TrimPrefix(entry, "app:"), "}")
		require.True(t, ok)
		require.True(t, strings.HasPrefix(tag, "{"))
		require.Equal(t, ":k:"+key, rest, "the key follows the bucket tag unchanged")
		require.Equal(t, "app:"+tag+"}:version", counter, "entry and counter share the hash tag")
		require.Equal(t, ks, s.keys(key), "the layout is deterministic")
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{time.Minute, 60_000},
	} {
		got, err := millis("op", tc.ttl)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%v", tc.ttl)
	}
	_, err := millis("op", 0)
	require.ErrorIs(t, err, kv.ErrInvalidTTL)
}

func TestExpiresAt(t *testing.T) {
	t.Parallel()
	s := newStore(t, newClient(t))
	ctx := context.Background()
	before := time.Now()
	_, err := s.Set(ctx, "k", []byte("x"), time.Hour)
	require.NoError(t, err)
	it, err := s.Get(ctx, "k")
	require.NoError(t, err)
	require.WithinRange(t, it.ExpiresAt, before.Add(time.Hour-5*time.Second), time.Now().Add(time.Hour))
}

func TestPrefixesIsolate(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ctx := context.Background()
	a, b := newStore(t, c), newStore(t, c)
	_, err := a.Set(ctx, "k", []byte("a"), time.Minute)
	require.NoError(t, err)
	_, err = b.Get(ctx, "k")
	require.ErrorIs(t, err, kv.ErrNotFound)

	// The same prefix, through another client: another instance of the
	// same application sees the same state.
	a2, err := New(newClient(t), Config{Prefix: a.prefix})
	require.NoError(t, err)
	it, err := a2.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("a"), it.Value)
}

func TestIncrementRange(t *testing.T) {
	t.Parallel()
	s := newStore(t, newClient(t))
	ctx := context.Background()
	set := func(key, v string) {
		_, err := s.Set(ctx, key, []byte(v), time.Minute)
		require.NoError(t, err)
	}
	value := func(key string) string {
		it, err := s.Get(ctx, key)
		require.NoError(t, err)
		return string(it.Value)
	}

	set("max", "9223372036854775806")
	n, err := s.Increment(ctx, "max", 1, time.Minute)
	require.NoError(t, err)
	require.Equal(t, int64(9223372036854775807), n, "64-bit arithmetic, no loss of precision")
	_, err = s.Increment(ctx, "max", 1, time.Minute)
	require.ErrorIs(t, err, kv.ErrOverflow)
	require.Equal(t, "9223372036854775807", value("max"), "a refused increment changes nothing")

	set("min", "-9223372036854775808")
	_, err = s.Increment(ctx, "min", -1, time.Minute)
	require.ErrorIs(t, err, kv.ErrOverflow)
	n, err = s.Increment(ctx, "min", 9223372036854775807, time.Minute)
	require.NoError(t, err)
	require.Equal(t, int64(-1), n)

	for i, v := range []string{"9223372036854775808", "-9223372036854775809", "01", "-0", "+1", " 1", "1.5", "1e3", "", "-"} {
		key := fmt.Sprint("bad", i)
		set(key, v)
		_, err := s.Increment(ctx, key, 1, time.Minute)
		require.ErrorIs(t, err, kv.ErrNotCounter, "%q", v)
		require.Equal(t, v, value(key), "%q is left alone", v)
	}
	for i, v := range []string{"0", "-1", "42", "9223372036854775807"} {
		key := fmt.Sprint("good", i)
		set(key, v)
		_, err := s.Increment(ctx, key, 0, time.Minute)
		require.NoError(t, err, "%q", v)
	}
}

func TestIncrementVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t, newClient(t))
	ctx := context.Background()
	_, err := s.Increment(ctx, "n", 1, time.Minute)
	require.NoError(t, err)
	it, err := s.Get(ctx, "n")
	require.NoError(t, err)
	require.NotZero(t, it.Version)
	_, err = s.Increment(ctx, "n", 1, time.Minute)
	require.NoError(t, err)
	_, err = s.CompareAndSet(ctx, "n", []byte("0"), time.Minute, it.Version)
	require.ErrorIs(t, err, kv.ErrConflict, "an increment is a write: it moves the version")
}

// A version counter lost to a flush or an eviction must not hand a live
// entry a version it had before.
func TestLostCounterKeepsVersionsGrowing(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c)
	ctx := context.Background()
	var last uint64
	for range 5 {
		v, err := s.Set(ctx, "k", []byte("x"), time.Minute)
		require.NoError(t, err)
		last = v
	}
	require.NoError(t, c.Del(ctx, s.keys("k")[1]).Err())
	v, err := s.Set(ctx, "k", []byte("y"), time.Minute)
	require.NoError(t, err)
	require.Greater(t, v, last)
	v2, err := s.CompareAndSet(ctx, "k", []byte("z"), time.Minute, v)
	require.NoError(t, err)
	require.Greater(t, v2, v)
}

// Entries the store did not write fail closed: an error, never a miss and
// never a value.
func TestMalformedEntries(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c)
	ctx := context.Background()

	noExpiry := s.keys("no-expiry")[0]
	require.NoError(t, c.HSet(ctx, noExpiry, "v", "x", "ver", "5").Err())
	_, err := s.Get(ctx, "no-expiry")
	require.ErrorIs(t, err, ErrMalformed)
	_, err = s.Consume(ctx, "no-expiry")
	require.ErrorIs(t, err, ErrMalformed)
	require.EqualValues(t, 1, c.Exists(ctx, noExpiry).Val(), "a malformed entry is left for an operator")

	badVersion := s.keys("bad-version")[0]
	require.NoError(t, c.HSet(ctx, badVersion, "v", "x", "ver", "zero").Err())
	require.NoError(t, c.Expire(ctx, badVersion, time.Minute).Err())
	_, err = s.Get(ctx, "bad-version")
	require.ErrorIs(t, err, ErrMalformed)

	str := s.keys("string")[0]
	require.NoError(t, c.Set(ctx, str, "plain", time.Minute).Err())
	for name, op := range map[string]func() error{
		"get":       func() error { _, err := s.Get(ctx, "string"); return err },
		"set":       func() error { _, err := s.Set(ctx, "string", []byte("x"), time.Minute); return err },
		"cas":       func() error { _, err := s.CompareAndSet(ctx, "string", []byte("x"), time.Minute, 0); return err },
		"consume":   func() error { _, err := s.Consume(ctx, "string"); return err },
		"increment": func() error { _, err := s.Increment(ctx, "string", 1, time.Minute); return err },
	} {
		err := op()
		require.Error(t, err, name)
		require.NotErrorIs(t, err, kv.ErrNotFound, name)
		require.NotErrorIs(t, err, kv.ErrConflict, name)
		require.True(t, strings.HasPrefix(err.Error(), "moat/redis: "), "%s: %v", name, err)
	}
}

// Two instances (two clients, one prefix) racing on one key.
func TestConcurrentInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c1, c2 := newClient(t), newClient(t)
	a := newStore(t, c1)
	b, err := New(c2, Config{Prefix: a.prefix})
	require.NoError(t, err)
	stores := []kv.Store{a, b}

	t.Run("ConsumeExactlyOne", func(t *testing.T) {
		_, err := a.Set(ctx, "code", []byte("prize"), time.Minute)
		require.NoError(t, err)
		var wins, misses atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				<-start
				_, err := stores[i%2].Consume(ctx, "code")
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, kv.ErrNotFound):
					misses.Add(1)
				default:
					t.Errorf("consume: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
		require.Equal(t, int32(99), misses.Load())
	})

	t.Run("IncrementNeverLost", func(t *testing.T) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		seen := make([]int64, 100)
		for i := range 100 {
			wg.Go(func() {
				<-start
				n, err := stores[i%2].Increment(ctx, "attempts", 1, time.Minute)
				if err != nil {
					t.Errorf("increment: %v", err)
				}
				seen[i] = n
			})
		}
		close(start)
		wg.Wait()
		it, err := a.Get(ctx, "attempts")
		require.NoError(t, err)
		require.Equal(t, "100", string(it.Value))
		distinct := map[int64]bool{}
		for _, n := range seen {
			distinct[n] = true
		}
		require.Len(t, distinct, 100, "every caller saw its own count")
	})

	t.Run("CompareAndSetExactlyOne", func(t *testing.T) {
		v, err := a.Set(ctx, "state", []byte("0"), time.Minute)
		require.NoError(t, err)
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				<-start
				_, err := stores[i%2].CompareAndSet(ctx, "state", []byte(fmt.Sprint(i)), time.Minute, v)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, kv.ErrConflict):
					t.Errorf("compare-and-set: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})
}

// A Store whose Redis is gone answers every call with an error, soon:
// never a miss, never a success. Callers refuse the request (503).
func TestRedisDown(t *testing.T) {
	t.Parallel()
	c := goredis.NewClient(&goredis.Options{
		Addr:        closedAddr(t),
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: 1, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond,
	})
	defer c.Close()
	s, err := New(c, Config{})
	require.NoError(t, err)
	ctx := context.Background()

	start := time.Now()
	for name, op := range map[string]func() error{
		"get":       func() error { _, err := s.Get(ctx, "k"); return err },
		"set":       func() error { _, err := s.Set(ctx, "k", []byte("x"), time.Minute); return err },
		"cas":       func() error { _, err := s.CompareAndSet(ctx, "k", []byte("x"), time.Minute, 0); return err },
		"cas-ver":   func() error { _, err := s.CompareAndSet(ctx, "k", []byte("x"), time.Minute, 7); return err },
		"delete":    func() error { return s.Delete(ctx, "k") },
		"consume":   func() error { _, err := s.Consume(ctx, "k"); return err },
		"increment": func() error { _, err := s.Increment(ctx, "k", 1, time.Minute); return err },
	} {
		err := op()
		require.Error(t, err, name)
		require.NotErrorIs(t, err, kv.ErrNotFound, name)
		require.NotErrorIs(t, err, kv.ErrConflict, name)
		require.True(t, strings.HasPrefix(err.Error(), "moat/redis: "), "%s: %v", name, err)
	}
	require.Less(t, time.Since(start), 5*time.Second)

	start = time.Now()
	_, err = NewInvalidator(ctx, c, InvalidatorConfig{Logger: quietLogger()})
	require.Error(t, err, "an invalidator that cannot subscribe is refused at construction")
	require.Less(t, time.Since(start), 5*time.Second)
}

// Errors never carry the stored value or the key.
func TestErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c)
	ctx := context.Background()
	const key, secret = "otp:alice-secret-key", "123456-secret-value"
	require.NoError(t, c.Set(ctx, s.keys(key)[0], secret, time.Minute).Err())
	_, err := s.Get(ctx, key)
	require.Error(t, err)
	_, err2 := s.Set(ctx, key, []byte(secret), time.Minute)
	require.Error(t, err2)
	for _, e := range []error{err, err2} {
		require.NotContains(t, e.Error(), "secret")
	}
}

// A Redis that stops answering without closing the connection times out
// into an error, never a miss.
func TestRedisSilent(t *testing.T) {
	t.Parallel()
	p := startProxy(t, redisAddr(t))
	c := goredis.NewClient(&goredis.Options{
		Addr: p.addr(), DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1,
	})
	defer c.Close()
	s, err := New(c, Config{Prefix: newPrefix(t, newClient(t))})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = s.Set(ctx, "nonce", []byte("x"), time.Minute)
	require.NoError(t, err)

	p.blackhole()
	start := time.Now()
	_, err = s.Consume(ctx, "nonce")
	require.Error(t, err)
	require.NotErrorIs(t, err, kv.ErrNotFound)
	require.Less(t, time.Since(start), 5*time.Second)
}
