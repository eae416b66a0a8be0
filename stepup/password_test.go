package stepup_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

func newPasswordCheck(t testing.TB, e *env) (*stepup.PasswordCheck, *stepup.MemoryDirectory) {
	t.Helper()
	dir := stepup.NewMemoryDirectory(weakHasher(t))
	require.NoError(t, dir.AddUser(context.Background(), "alice", "user-alice", "correct horse"))
	require.NoError(t, dir.AddUser(context.Background(), "carol", "user-carol", "battery staple"))
	require.NoError(t, dir.SetDisabled("carol", true))
	c, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: dir, Hasher: weakHasher(t), Store: e.store})
	require.NoError(t, err)
	return c, dir
}

func TestPasswordCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, _ := newPasswordCheck(t, e)
	require.Equal(t, "UserLogin", c.Name())

	r, err := c.Authorize(ctx, e.req("", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"fields": []any{"username", "password"}}, challengeJSON(t, r))

	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "alice", Password: "wrong"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCredentials, r.Reason)
	require.EqualValues(t, 4, challengeJSON(t, r)["attempts_left"])

	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, "user-alice", r.Subject)
	require.Equal(t, []string{"pwd"}, r.AMR)
	require.Equal(t, stepup.DefaultValidFor, r.ValidFor)
}

func TestPasswordCheckUnknownAndDisabled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, _ := newPasswordCheck(t, e)
	r, err := c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "mallory", Password: "x"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCredentials, r.Reason, "an unknown user looks like a wrong password")
	for range 4 {
		r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "mallory", Password: "x"}))
		require.NoError(t, err)
	}
	require.Equal(t, auth.CheckBlocked, r.Status, "unknown users block like known ones")

	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "carol", Password: "wrong"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "carol", Password: "battery staple"}))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonAccountDisabled, r.Reason)
}

func TestPasswordCheckMalformedAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, _ := newPasswordCheck(t, e)
	for _, a := range []string{`{}`, `[]`, `"x"`, `{"username":"alice"}`, `{"username":"alice","password":"x","extra":1}`,
		`{"username":"alice","password":"x"} {}`, `{"username":1,"password":"x"}`, `{`} {
		r, err := c.Authorize(ctx, e.req("", "s1", a))
		requireStatus(t, auth.CheckChallenge, r, err)
		require.Equal(t, stepup.ReasonMalformed, r.Reason, a)
	}
	st, err := c.Lockout().State(ctx, "user:user-alice", e.clock.Now())
	require.NoError(t, err)
	require.Equal(t, 5, st.AttemptsLeft, "malformed answers use no attempt")
}

// 10 wrong passwords then the right one: refused while blocked, accepted
// once the block ends; failures in several sessions share one budget.
func TestPasswordCheckBlocksAcrossSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, _ := newPasswordCheck(t, e)
	for i := range 10 {
		r, err := c.Authorize(ctx, e.req("", []string{"s1", "s2", "s3"}[i%3], stepup.PasswordAnswer{Username: "alice", Password: "wrong"}))
		require.NoError(t, err)
		if i >= 4 {
			require.Equal(t, auth.CheckBlocked, r.Status, "attempt %d", i+1)
		}
	}
	r, err := c.Authorize(ctx, e.req("", "s4", stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, e.clock.Now().Add(stepup.DefaultBlockFor), r.BlockedUntil)
	e.clock.Advance(stepup.DefaultBlockFor)
	r, err = c.Authorize(ctx, e.req("", "s4", stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}))
	requireStatus(t, auth.CheckSuccess, r, err)
}

// 50 failures without a success lock a known user until Unblock, however
// long ago they were; a username the directory does not know is forgotten
// 30 days after its first failure, so guessed names cannot fill the store.
func TestPasswordCheckLockedUntilUnblock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, _ := newPasswordCheck(t, e)
	verified := map[string]int{}
	for range 200 {
		for name, account := range map[string]string{"alice": "user:user-alice", "mallory": "unknown:mallory"} {
			st, err := c.Lockout().State(ctx, account, e.clock.Now())
			require.NoError(t, err)
			if !st.Blocked {
				verified[name]++ // this attempt is verified
			}
			_, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: name, Password: "wrong"}))
			require.NoError(t, err)
		}
		e.clock.Advance(stepup.DefaultBlockFor)
	}
	require.Equal(t, stepup.DefaultMaxConsecutiveFailures, verified["alice"])
	require.Equal(t, stepup.DefaultMaxConsecutiveFailures, verified["mallory"])

	e.clock.Advance(31 * 24 * time.Hour)
	r, err := c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}))
	requireStatus(t, auth.CheckBlocked, r, err)
	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "mallory", Password: "x"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCredentials, r.Reason)

	require.NoError(t, c.Unblock(ctx, "user-alice"))
	r, err = c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}))
	requireStatus(t, auth.CheckSuccess, r, err)
}

func TestPasswordCheckStoreErrorFailsClosed(t *testing.T) {
	t.Parallel()
	dir := stepup.NewMemoryDirectory(weakHasher(t))
	require.NoError(t, dir.AddUser(context.Background(), "alice", "user-alice", "pw"))
	c, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: dir, Hasher: weakHasher(t), Store: failingStore{}})
	require.NoError(t, err)
	r, err := c.Authorize(context.Background(), &auth.CheckRequest{Answer: []byte(`{"username":"alice","password":"pw"}`), Now: time.Now()})
	require.ErrorIs(t, err, errStoreDown)
	require.NotEqual(t, auth.CheckSuccess, r.Status)
}

func TestPasswordCheckConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "x", Store: e.store})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
	_, err = stepup.NewPasswordCheck(stepup.PasswordConfig{Users: stepup.NewMemoryDirectory(weakHasher(t)), Hasher: weakHasher(t), Store: e.store})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
}

func TestPasswordCheckRehash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	old, err := stepup.NewPasswordHasher(stepup.HasherConfig{
		Params: stepup.Argon2idParams{Memory: 32, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, InsecureWeakParams: true,
	})
	require.NoError(t, err)
	dir := stepup.NewMemoryDirectory(old)
	require.NoError(t, dir.AddUser(ctx, "alice", "user-alice", "pw"))
	var got string
	c, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: dir, Hasher: weakHasher(t), Store: e.store,
		Rehash: func(_ context.Context, subject, h string) { got = subject + " " + h }})
	require.NoError(t, err)
	r, err := c.Authorize(ctx, e.req("", "s1", stepup.PasswordAnswer{Username: "alice", Password: "pw"}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Contains(t, got, "user-alice $argon2id$v=19$m=64,t=1,p=1$", "upgraded to the hasher's parameters")
}
