package stepup_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

// Next counter 10, look-ahead 5: codes for 8 refused, 13 accepted (next
// becomes 14), 11 refused, 20 refused.
func TestHOTPCheckTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	sealer, err := stepup.NewMemorySealer()
	require.NoError(t, err)
	st := stepup.NewMemoryOTPStore()
	c, err := stepup.NewHOTPCheck(stepup.HOTPConfig{Name: "Token", Enrollments: st, Sealer: sealer, Store: e.store, LookAhead: 5})
	require.NoError(t, err)
	k := stepup.OTPKey{Secret: []byte("12345678901234567890")}
	require.NoError(t, c.Import(ctx, "user-alice", k, 10, e.clock.Now()))

	r, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"digits": 6.0}, challengeJSON(t, r))

	for _, tc := range []struct {
		counter uint64
		ok      bool
		next    int64
	}{
		{8, false, 10},
		{13, true, 14},
		{11, false, 14},
		{13, false, 14},
		{20, false, 14},
		{14, true, 15},
	} {
		code, err := k.HOTP(tc.counter)
		require.NoError(t, err)
		r, err := c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
		require.NoError(t, err)
		require.Equal(t, tc.ok, r.Status == auth.CheckSuccess, "counter %d", tc.counter)
		rec, err := st.Get(ctx, "user-alice", stepup.KindHOTP)
		require.NoError(t, err)
		require.Equal(t, tc.next, rec.Counter, "counter %d", tc.counter)
	}
}

func TestHOTPImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sealer, _ := stepup.NewMemorySealer()
	c, err := stepup.NewHOTPCheck(stepup.HOTPConfig{Name: "Token", Enrollments: stepup.NewMemoryOTPStore(), Sealer: sealer, Store: e.store})
	require.NoError(t, err)
	require.Error(t, c.Import(context.Background(), "user-alice", stepup.OTPKey{Secret: []byte("short")}, 0, e.clock.Now()))
	require.Error(t, c.Import(context.Background(), "", stepup.OTPKey{Secret: []byte("12345678901234567890")}, 0, e.clock.Now()))
	require.Error(t, c.Import(context.Background(), "user-alice", stepup.OTPKey{Secret: []byte("12345678901234567890")}, -1, e.clock.Now()))
	_, err = stepup.NewHOTPCheck(stepup.HOTPConfig{Name: "Token", Enrollments: stepup.NewMemoryOTPStore(), Sealer: sealer, Store: e.store, LookAhead: 101})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
}
