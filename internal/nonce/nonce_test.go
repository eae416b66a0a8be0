package nonce_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/internal/nonce"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

func TestIssueConsume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	iss, err := nonce.New(kv.NewMemory(kv.MemoryConfig{Now: clock.Now}), "n:", time.Minute)
	require.NoError(t, err)

	n, err := iss.Issue(ctx, []byte("bound"))
	require.NoError(t, err)
	require.Len(t, n, 43)
	data, err := iss.Consume(ctx, n)
	require.NoError(t, err)
	require.Equal(t, []byte("bound"), data)
	_, err = iss.Consume(ctx, n)
	require.ErrorIs(t, err, nonce.ErrInvalid, "second use")

	n2, err := iss.Issue(ctx, nil)
	require.NoError(t, err)
	require.NotEqual(t, n, n2)
	clock.Advance(time.Minute)
	_, err = iss.Consume(ctx, n2)
	require.ErrorIs(t, err, nonce.ErrInvalid, "expired")

	for _, bad := range []string{"", "never-issued", string(make([]byte, 1000))} {
		_, err = iss.Consume(ctx, bad)
		require.ErrorIs(t, err, nonce.ErrInvalid)
	}
}

func TestConcurrentConsume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, err := nonce.New(kv.NewMemory(kv.MemoryConfig{}), "n:", time.Minute)
	require.NoError(t, err)
	n, err := iss.Issue(ctx, nil)
	require.NoError(t, err)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := iss.Consume(ctx, n); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

type failing struct{ kv.Store }

func (failing) Consume(context.Context, string) (kv.Item, error) {
	return kv.Item{}, errors.New("connection refused")
}

func TestStoreErrorIsNotInvalid(t *testing.T) {
	t.Parallel()
	iss, err := nonce.New(failing{kv.NewMemory(kv.MemoryConfig{})}, "n:", time.Minute)
	require.NoError(t, err)
	_, err = iss.Consume(context.Background(), "x")
	require.Error(t, err)
	require.NotErrorIs(t, err, nonce.ErrInvalid, "an unavailable store must be distinguishable from a bad nonce")
}
