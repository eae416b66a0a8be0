package device

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
)

func TestCoarseClock(t *testing.T) {
	t.Parallel()
	c := newCoarseClock(time.Millisecond)
	start := c.read()
	require.Eventually(t, func() bool { return c.read() > start }, 5*time.Second, time.Millisecond, "the timer moves the clock")
	c.stop()
	c.stop() // twice is fine
	a := c.read()
	b := c.read()
	require.GreaterOrEqual(t, b, a, "after stop it reads the clock directly")
	require.Greater(t, a, start)
}

func TestControlCloseStopsClock(t *testing.T) {
	t.Parallel()
	ctl, err := New(Config{Store: NewMemory(MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{})})
	require.NoError(t, err)
	require.NotNil(t, ctl.coarse)
	require.NoError(t, ctl.Close())
	require.False(t, ctl.coarse.live.Load())

	noCache, err := New(Config{Store: NewMemory(MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{}), CacheTTL: -1})
	require.NoError(t, err)
	require.Nil(t, noCache.coarse, "no cache, no timer")
	require.NoError(t, noCache.Close())
}
