package kv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	kvtest.Run(t, kvtest.Harness{New: func(t *testing.T) (kv.Store, func(time.Duration)) {
		clock := kvtest.NewClock()
		return kv.NewMemory(kv.MemoryConfig{Now: clock.Now}), clock.Advance
	}})
}

func TestMemoryFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	m := kv.NewMemory(kv.MemoryConfig{Now: clock.Now, MaxEntries: 10})
	for i := 0; i < 10; i++ {
		_, err := m.Set(ctx, fmt.Sprint(i), []byte("x"), time.Minute)
		require.NoError(t, err)
	}
	_, err := m.Set(ctx, "one-too-many", []byte("x"), time.Minute)
	require.ErrorIs(t, err, kv.ErrFull)
	_, err = m.Set(ctx, "3", []byte("replace"), time.Minute)
	require.NoError(t, err, "replacing an existing key needs no room")
	clock.Advance(2 * time.Minute)
	_, err = m.Set(ctx, "after-expiry", []byte("x"), time.Minute)
	require.NoError(t, err, "expired entries are swept to make room")
	require.Equal(t, 1, m.Len())
}

func TestMemoryIncrementOverflow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := kv.NewMemory(kv.MemoryConfig{})
	_, err := m.Set(ctx, "c", []byte("9223372036854775807"), time.Minute)
	require.NoError(t, err)
	_, err = m.Increment(ctx, "c", 1, time.Minute)
	require.ErrorIs(t, err, kv.ErrOverflow)
}

func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	m := kv.NewMemory(kv.MemoryConfig{})
	_, _ = m.Set(ctx, "key", []byte("value"), time.Hour)
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Get(ctx, "key")
		}
	})
	b.Run("SetConsume", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Set(ctx, "nonce", []byte("v"), time.Minute)
			_, _ = m.Consume(ctx, "nonce")
		}
	})
}
