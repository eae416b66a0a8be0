package stepup_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

func newSMSCheck(t testing.TB, e *env) (*stepup.CodeCheck, *stepup.Outbox) {
	t.Helper()
	out := stepup.NewOutbox()
	c, err := stepup.NewSMSCheck(stepup.CodeConfig{
		Name: "SMSOTP", Store: e.store, Sender: out,
		Destinations: stepup.DestinationMap{"user-alice": "+33612345678", "user-bob": "+33700000000"},
	})
	require.NoError(t, err)
	return c, out
}

func TestSMSCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, out := newSMSCheck(t, e)

	r, err := c.Authorize(ctx, e.req("", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonSubjectRequired, r.Reason)

	r, err = c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"channel": "sms", "to": "+*********78", "length": 6.0, "expires_in": 300.0, "resend_in": 30.0}, challengeJSON(t, r))
	code := out.LastCode("+33612345678")
	require.Len(t, code, 6)

	// Asking again does not send another code.
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Len(t, out.Messages(), 1)

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: wrong}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCode, r.Reason)
	require.EqualValues(t, 4, challengeJSON(t, r)["attempts_left"])

	// A code is bound to its session.
	r, err = c.Authorize(ctx, e.req("user-alice", "s2", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonExpired, r.Reason)

	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, "user-alice", r.Subject)
	require.Equal(t, []string{"sms"}, r.AMR)

	// Single use.
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonExpired, r.Reason)
}

func TestSMSCheckExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, out := newSMSCheck(t, e)
	_, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	require.NoError(t, err)
	code := out.LastCode("+33612345678")
	e.clock.Advance(stepup.DefaultCodeTTL)
	r, err := c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonExpired, r.Reason)
	require.Len(t, out.Messages(), 2, "a new code is sent")
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: out.LastCode("+33612345678")}))
	requireStatus(t, auth.CheckSuccess, r, err)
}

func TestSMSCheckResendLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, out := newSMSCheck(t, e)
	_, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	require.NoError(t, err)
	first := out.LastCode("+33612345678")
	r, err := c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Resend: true}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonResendTooSoon, r.Reason)
	require.Len(t, out.Messages(), 1)

	e.clock.Advance(stepup.DefaultResendAfter)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Resend: true}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Len(t, out.Messages(), 2)
	// The old code no longer works.
	if first != out.LastCode("+33612345678") {
		r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: first}))
		requireStatus(t, auth.CheckChallenge, r, err)
		require.Equal(t, stepup.ReasonWrongCode, r.Reason)
	}
	// Per-user send budget, across sessions.
	for i := range 3 {
		r, err = c.Authorize(ctx, e.req("user-alice", "other-"+string(rune('a'+i)), nil))
		requireStatus(t, auth.CheckChallenge, r, err)
	}
	r, err = c.Authorize(ctx, e.req("user-alice", "s9", nil))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, stepup.ReasonSendLimit, r.Reason)
	require.Len(t, out.Messages(), stepup.DefaultMaxSends)
}

// 10 wrong codes then the right one: refused while blocked. Failures
// spread over several sessions share the user's budget.
func TestSMSCheckBlocksAcrossChallenges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, out := newSMSCheck(t, e)
	sessions := []string{"s1", "s2", "s3"}
	for _, s := range sessions {
		_, err := c.Authorize(ctx, e.req("user-alice", s, nil))
		require.NoError(t, err)
	}
	code := out.LastCode("+33612345678") // s3's code
	var r auth.CheckResult
	var err error
	for i := range 10 {
		r, err = c.Authorize(ctx, e.req("user-alice", sessions[i%3], stepup.CodeAnswer{Code: "12345x"}))
		require.NoError(t, err)
		if i == 3 {
			require.EqualValues(t, 1, challengeJSON(t, r)["attempts_left"], "four failures over three sessions")
		}
	}
	require.Equal(t, auth.CheckBlocked, r.Status)
	r, err = c.Authorize(ctx, e.req("user-alice", "s3", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, stepup.ReasonBlocked, r.Reason)
	// Another user is not blocked.
	r, err = c.Authorize(ctx, e.req("user-bob", "b1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	// No code is sent to a blocked user.
	n := len(out.Messages())
	r, err = c.Authorize(ctx, e.req("user-alice", "s4", nil))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Len(t, out.Messages(), n)

	e.clock.Advance(stepup.DefaultBlockFor)
	r, err = c.Authorize(ctx, e.req("user-alice", "s3", stepup.CodeAnswer{Code: code}))
	require.NoError(t, err)
	require.NotEqual(t, auth.CheckSuccess, r.Status, "the code expired meanwhile")

	// An operator can lift a block at once.
	for range stepup.DefaultMaxFailures {
		_, err = c.Authorize(ctx, e.req("user-alice", "s5", stepup.CodeAnswer{Code: "12345x"}))
		require.NoError(t, err)
	}
	r, err = c.Authorize(ctx, e.req("user-alice", "s6", nil))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.NoError(t, c.Unblock(ctx, "user-alice"))
	st, err := c.Lockout().State(ctx, "user:user-alice", e.clock.Now())
	require.NoError(t, err)
	require.False(t, st.Blocked)
	require.Equal(t, stepup.DefaultMaxFailures, st.AttemptsLeft)
}

func TestSMSCheckConcurrentAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, out := newSMSCheck(t, e)
	_, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	require.NoError(t, err)
	code := out.LastCode("+33612345678")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r, err := c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
			require.NoError(t, err)
			if r.Status == auth.CheckSuccess {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

type failingSender struct{}

func (failingSender) Send(context.Context, stepup.Message) error { return errStoreDown }

func TestSMSCheckErrorsFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, err := stepup.NewSMSCheck(stepup.CodeConfig{Name: "SMSOTP", Store: e.store, Sender: failingSender{},
		Destinations: stepup.DestinationMap{"user-alice": "+33612345678"}})
	require.NoError(t, err)
	_, err = c.Authorize(ctx, e.req("user-alice", "s1", nil))
	require.ErrorIs(t, err, errStoreDown)

	c, err = stepup.NewSMSCheck(stepup.CodeConfig{Name: "SMSOTP", Store: failingStore{}, Sender: stepup.NewOutbox(),
		Destinations: stepup.DestinationMap{"user-alice": "+33612345678"}})
	require.NoError(t, err)
	r, err := c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: "123456"}))
	require.ErrorIs(t, err, errStoreDown)
	require.NotEqual(t, auth.CheckSuccess, r.Status)

	c, _ = newSMSCheck(t, e)
	r, err = c.Authorize(ctx, e.req("user-nobody", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonNotEnrolled, r.Reason)
}

func TestEmailCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	out := stepup.NewOutbox()
	c, err := stepup.NewEmailCheck(stepup.CodeConfig{Name: "EmailOTP", Store: e.store, Sender: out,
		Destinations: stepup.DestinationMap{"user-alice": "alice@example.com"}, TTL: time.Minute})
	require.NoError(t, err)
	r, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	ch := challengeJSON(t, r)
	require.Equal(t, "a***@example.com", ch["to"])
	require.Equal(t, "email", ch["channel"])
	m, ok := out.Last("alice@example.com")
	require.True(t, ok)
	require.Equal(t, "email", m.Channel)
	require.Equal(t, "EmailOTP", m.Check)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: m.Code}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, []string{"email"}, r.AMR)
}

func TestCodeCheckConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := stepup.CodeConfig{Name: "x", Store: e.store, Sender: stepup.NewOutbox(), Destinations: stepup.DestinationMap{}}
	for name, mut := range map[string]func(*stepup.CodeConfig){
		"no sender":    func(c *stepup.CodeConfig) { c.Sender = nil },
		"no dest":      func(c *stepup.CodeConfig) { c.Destinations = nil },
		"no store":     func(c *stepup.CodeConfig) { c.Store = nil },
		"no name":      func(c *stepup.CodeConfig) { c.Name = "" },
		"short key":    func(c *stepup.CodeConfig) { c.HashKey = []byte("short") },
		"long ttl":     func(c *stepup.CodeConfig) { c.TTL = time.Hour },
		"negative ttl": func(c *stepup.CodeConfig) { c.TTL = -time.Second },
	} {
		cfg := ok
		mut(&cfg)
		_, err := stepup.NewSMSCheck(cfg)
		require.ErrorIs(t, err, stepup.ErrInvalidConfig, name)
	}
}

// Issue 2's bad-input case with a configured budget: after MaxFailures
// wrong codes the challenge is blocked, the right code is refused while it
// is, and accepted once the block ends (the code is still live then).
func TestSMSCheckConfiguredBlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	out := stepup.NewOutbox()
	c, err := stepup.NewSMSCheck(stepup.CodeConfig{
		Name: "SMSOTP", Store: e.store, Sender: out,
		Destinations: stepup.DestinationMap{"user-alice": "+33612345678"},
		Lockout:      stepup.LockoutConfig{MaxFailures: 3, BlockFor: 2 * time.Minute},
	})
	require.NoError(t, err)
	r, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	code := out.LastCode("+33612345678")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for left := 2; left > 0; left-- {
		r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: wrong}))
		requireStatus(t, auth.CheckChallenge, r, err)
		require.Equal(t, stepup.ReasonWrongCode, r.Reason)
		require.EqualValues(t, left, challengeJSON(t, r)["attempts_left"])
	}
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: wrong}))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, e.clock.Now().Add(2*time.Minute), r.BlockedUntil)

	e.clock.Advance(time.Minute)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, stepup.ReasonBlocked, r.Reason, "the right code is refused while blocked")
	require.Len(t, out.Messages(), 1, "and no new code is sent")

	e.clock.Advance(time.Minute)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.CodeAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, []string{"sms"}, r.AMR)
}
