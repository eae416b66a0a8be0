package stepup_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
)

func TestNewLockoutConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, cfg := range map[string]stepup.LockoutConfig{
		"no name":         {},
		"over NIST limit": {Name: "x", MaxConsecutiveFailures: 101},
		"negative":        {Name: "x", MaxFailures: -1},
		"budget over cap": {Name: "x", MaxFailures: 20, MaxConsecutiveFailures: 10},
		"negative window": {Name: "x", BlockFor: -time.Second},
	} {
		_, err := stepup.NewLockout(e.store, cfg)
		require.ErrorIs(t, err, stepup.ErrInvalidConfig, name)
	}
	_, err := stepup.NewLockout(nil, stepup.LockoutConfig{Name: "x"})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "x"})
	require.NoError(t, err)
	c := l.Config()
	require.Equal(t, stepup.DefaultMaxFailures, c.MaxFailures)
	require.Equal(t, stepup.DefaultBlockFor, c.BlockFor)
	require.Equal(t, stepup.DefaultMaxConsecutiveFailures, c.MaxConsecutiveFailures)
	require.LessOrEqual(t, c.MaxConsecutiveFailures, 100)
}

func try(t *testing.T, e *env, l *stepup.Lockout, account string, right bool) stepup.Outcome {
	t.Helper()
	out, err := l.Try(context.Background(), account, e.clock.Now(), func(context.Context) (bool, error) { return right, nil })
	require.NoError(t, err)
	return out
}

func TestLockoutBlocksThenUnblocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 3, BlockFor: time.Minute})
	require.NoError(t, err)
	require.Equal(t, 2, try(t, e, l, "alice", false).AttemptsLeft)
	require.Equal(t, 1, try(t, e, l, "alice", false).AttemptsLeft)
	out := try(t, e, l, "alice", false)
	require.True(t, out.Blocked)
	require.Equal(t, e.clock.Now().Add(time.Minute), out.BlockedUntil)

	// The right answer is refused, unverified, while blocked.
	called := false
	out, err = l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) { called = true; return true, nil })
	require.NoError(t, err)
	require.True(t, out.Blocked)
	require.False(t, called)
	// Another account is not affected.
	require.True(t, try(t, e, l, "bob", true).OK)

	e.clock.Advance(time.Minute)
	st, err := l.State(context.Background(), "alice", e.clock.Now())
	require.NoError(t, err)
	require.False(t, st.Blocked)
	require.Equal(t, 3, st.AttemptsLeft, "a fresh budget after the block")
	require.True(t, try(t, e, l, "alice", true).OK)
}

func TestLockoutSuccessResetsFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 3})
	require.NoError(t, err)
	try(t, e, l, "alice", false)
	try(t, e, l, "alice", false)
	require.True(t, try(t, e, l, "alice", true).OK)
	require.Equal(t, 2, try(t, e, l, "alice", false).AttemptsLeft)
}

// Never more than MaxConsecutiveFailures failures without a success, however
// the attacker paces them around the temporary blocks.
func TestLockoutConsecutiveLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 5, BlockFor: time.Minute, MaxConsecutiveFailures: 100})
	require.NoError(t, err)
	failures := 0
	for range 1000 {
		out, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) {
			failures++
			return false, nil
		})
		require.NoError(t, err)
		if out.Blocked {
			e.clock.Advance(time.Minute)
		}
	}
	require.Equal(t, 100, failures)
	out := try(t, e, l, "alice", true)
	require.True(t, out.Blocked, "locked: the right answer is refused")
	require.NoError(t, l.Reset(context.Background(), "alice"))
	require.True(t, try(t, e, l, "alice", true).OK)
}

// Waiting does not refill the budget: failures are remembered until a
// success, so an attacker who makes a few guesses a month still never
// gets more than MaxConsecutiveFailures without a success in between,
// and a lock holds until Reset.
func TestLockoutConsecutiveLimitOverYears(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 5, BlockFor: time.Minute, MaxConsecutiveFailures: 100})
	require.NoError(t, err)
	failures := 0
	for range 300 {
		out, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) {
			failures++
			return false, nil
		})
		require.NoError(t, err)
		if !out.Blocked {
			require.Positive(t, out.AttemptsLeft)
		}
		e.clock.Advance(10 * 24 * time.Hour) // three guesses a month, for years
	}
	require.Equal(t, 100, failures)
	e.clock.Advance(5 * 365 * 24 * time.Hour)
	out := try(t, e, l, "alice", true)
	require.True(t, out.Blocked, "still locked five years on")
	require.True(t, out.BlockedUntil.After(e.clock.Now().Add(50*365*24*time.Hour)), "until Reset")
	require.NoError(t, l.Reset(context.Background(), "alice"))
	require.True(t, try(t, e, l, "alice", true).OK)
}

func TestLockoutParallelSharesOneBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 5})
	require.NoError(t, err)
	var verified atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) {
				verified.Add(1)
				return false, nil
			})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, int(verified.Load()), 5, "parallel guesses never exceed the budget")
	st, err := l.State(context.Background(), "alice", e.clock.Now())
	require.NoError(t, err)
	require.True(t, st.Blocked)
}

// A burst of parallel guesses is refused beyond the budget, unverified,
// and blocks the account for BlockFor; the refused guesses do not count
// toward MaxConsecutiveFailures, so one burst cannot lock the account
// until Reset. The store holds every guess at the block check until the
// whole burst is there, as on a busy server with a shared store.
func TestLockoutBurstBlocksButDoesNotLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const burst = 200
	bs := &barrierStore{Store: e.store, n: burst, all: make(chan struct{})}
	l, err := stepup.NewLockout(bs, stepup.LockoutConfig{Name: "t", MaxFailures: 5, BlockFor: time.Minute})
	require.NoError(t, err)
	var verified atomic.Int32
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			_, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) {
				verified.Add(1)
				return false, nil
			})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, verified.Load(), int32(5))
	st, err := l.State(context.Background(), "alice", e.clock.Now())
	require.NoError(t, err)
	require.True(t, st.Blocked)
	require.Equal(t, e.clock.Now().Add(time.Minute), st.BlockedUntil, "a temporary block")
	e.clock.Advance(time.Minute)
	require.True(t, try(t, e, l, "alice", true).OK, "not locked: the block ended")
}

// TestLockoutBurstOfRightAnswers: a burst of the right answer (one that
// only one caller can use, like a code) blocks the account, but the
// attempts that reserved the budget before the block are still verified,
// so exactly one passes, and no more wrong ones are verified than the
// budget allows (a success starts a fresh one).
func TestLockoutBurstOfRightAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const burst = 200
	bs := &barrierStore{Store: e.store, n: burst, all: make(chan struct{})}
	l, err := stepup.NewLockout(bs, stepup.LockoutConfig{Name: "t", MaxFailures: 5, BlockFor: time.Minute})
	require.NoError(t, err)
	var failed, used, passed atomic.Int32
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			out, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) {
				ok := used.CompareAndSwap(0, 1)
				if !ok {
					failed.Add(1)
				}
				return ok, nil
			})
			require.NoError(t, err)
			if out.OK {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), passed.Load(), "exactly one right answer passes")
	require.LessOrEqual(t, failed.Load(), int32(5))
}

// barrierStore holds the first n reads of block records until all n have
// arrived.
type barrierStore struct {
	kv.Store
	n       int32
	arrived atomic.Int32
	all     chan struct{}
}

func (s *barrierStore) Get(ctx context.Context, key string) (kv.Item, error) {
	if strings.Contains(key, ":b:") {
		switch n := s.arrived.Add(1); {
		case n == s.n:
			close(s.all)
		case n < s.n:
			<-s.all
		}
	}
	return s.Store.Get(ctx, key)
}

func TestLockoutStoreErrorFailsClosed(t *testing.T) {
	t.Parallel()
	l, err := stepup.NewLockout(failingStore{}, stepup.LockoutConfig{Name: "t"})
	require.NoError(t, err)
	out, err := l.Try(context.Background(), "alice", time.Now(), func(context.Context) (bool, error) { return true, nil })
	require.ErrorIs(t, err, errStoreDown)
	require.False(t, out.OK)
}

func TestLockoutVerifyErrorGivesAttemptBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := stepup.NewLockout(e.store, stepup.LockoutConfig{Name: "t", MaxFailures: 2})
	require.NoError(t, err)
	for range 5 {
		_, err := l.Try(context.Background(), "alice", e.clock.Now(), func(context.Context) (bool, error) { return false, errStoreDown })
		require.ErrorIs(t, err, errStoreDown)
	}
	st, err := l.State(context.Background(), "alice", e.clock.Now())
	require.NoError(t, err)
	require.False(t, st.Blocked)
	require.Equal(t, 2, st.AttemptsLeft)
}
