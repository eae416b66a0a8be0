package postgres

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

func TestKVTableIsUnlogged(t *testing.T) {
	t.Parallel()
	s := newTestStores(t, Config{})
	var persistence string
	require.NoError(t, s.kv.db.QueryRow(context.Background(),
		`SELECT relpersistence::text FROM pg_class WHERE oid = 'kv_entries'::regclass`).Scan(&persistence))
	require.Equal(t, "u", persistence)
	require.NoError(t, s.kv.db.QueryRow(context.Background(),
		`SELECT relpersistence::text FROM pg_class WHERE oid = 'kv_version_seq'::regclass`).Scan(&persistence))
	require.Equal(t, "p", persistence, "the version sequence survives a crash")
}

// TestKVMatchesMemoryOnCounters holds Increment to what the memory store
// accepts as a counter, and to its overflow rule.
func TestKVMatchesMemoryOnCounters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	pg := newTestStores(t, Config{KVNow: clock.Now}).KV()
	mem := kv.NewMemory(kv.MemoryConfig{Now: clock.Now})
	for _, c := range []struct {
		stored string
		delta  int64
	}{
		{"41", 1}, {"+5", 1}, {"-7", -1}, {"007", 3}, {"0", 0},
		{strconv.FormatInt(math.MaxInt64, 10), 1}, {strconv.FormatInt(math.MaxInt64-1, 10), 1},
		{strconv.FormatInt(math.MinInt64, 10), -1}, {strconv.FormatInt(math.MinInt64, 10), math.MaxInt64},
		{"9223372036854775808", -1}, {"1.5", 1}, {"1e3", 1}, {" 1", 1}, {"1 ", 1}, {"", 1}, {"--1", 1},
		{"\xff", 1}, {"1\x00", 1}, {"\\061", 1}, {"0x10", 1},
	} {
		key := "counter:" + c.stored
		_, err := pg.Set(ctx, key, []byte(c.stored), time.Hour)
		require.NoError(t, err)
		_, err = mem.Set(ctx, key, []byte(c.stored), time.Hour)
		require.NoError(t, err)
		want, wantErr := mem.Increment(ctx, key, c.delta, time.Hour)
		got, err := pg.Increment(ctx, key, c.delta, time.Hour)
		if wantErr != nil {
			require.ErrorIs(t, err, wantErr, "%q%+d", c.stored, c.delta)
			it, err := pg.Get(ctx, key)
			require.NoError(t, err)
			require.Equal(t, c.stored, string(it.Value), "a refused increment changes nothing")
			continue
		}
		require.NoError(t, err, "%q%+d", c.stored, c.delta)
		require.Equal(t, want, got, "%q%+d", c.stored, c.delta)
		it, err := pg.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, strconv.FormatInt(want, 10), string(it.Value))
	}
}

func TestKVIncrementKeepsExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	s := newTestStores(t, Config{KVNow: clock.Now}).KV()
	_, err := s.Increment(ctx, "c", 1, time.Minute)
	require.NoError(t, err)
	first, err := s.Get(ctx, "c")
	require.NoError(t, err)
	require.True(t, clock.Now().Add(time.Minute).Equal(first.ExpiresAt))
	clock.Advance(30 * time.Second)
	_, err = s.Increment(ctx, "c", 1, time.Hour)
	require.NoError(t, err)
	second, err := s.Get(ctx, "c")
	require.NoError(t, err)
	require.True(t, first.ExpiresAt.Equal(second.ExpiresAt))
	require.NotEqual(t, first.Version, second.Version, "every write is a new version")
}

// TestKVOpaqueKeys: keys are bytes, not text.
func TestKVOpaqueKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).KV()
	for _, key := range []string{"nul\x00byte", "\xff\xfe not utf-8", "é", string(make([]byte, kv.MaxKeyLen))} {
		_, err := s.Set(ctx, key, []byte(key), time.Hour)
		require.NoError(t, err)
		it, err := s.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, key, string(it.Value))
	}
	_, err := s.Get(ctx, "nul")
	require.ErrorIs(t, err, kv.ErrNotFound, "a key is all of its bytes")
}

func TestKVDeleteExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	s := newTestStores(t, Config{KVNow: clock.Now}).KV()
	_, err := s.Set(ctx, "short", []byte("x"), time.Second)
	require.NoError(t, err)
	_, err = s.Set(ctx, "long", []byte("y"), time.Hour)
	require.NoError(t, err)
	n, err := s.DeleteExpired(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	clock.Advance(time.Minute)
	n, err = s.DeleteExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = s.Get(ctx, "long")
	require.NoError(t, err)
}

func TestKVTinyTTLRoundsUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	s := newTestStores(t, Config{KVNow: clock.Now}).KV()
	_, err := s.Set(ctx, "k", []byte("x"), time.Nanosecond)
	require.NoError(t, err)
	it, err := s.Get(ctx, "k")
	require.NoError(t, err, "a positive TTL below a microsecond still stores the key")
	require.True(t, it.ExpiresAt.After(clock.Now()))
}
