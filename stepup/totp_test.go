package stepup_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/securestore"
	"github.com/moatsec/moat/stepup"
)

type totpEnv struct {
	*env
	check  *stepup.TOTPCheck
	store  *stepup.MemoryOTPStore
	sealer *stepup.MemorySealer
}

func newTOTP(t *testing.T, mut func(*stepup.TOTPConfig)) *totpEnv {
	t.Helper()
	return newTOTPOn(t, newEnv(t), mut)
}

func newTOTPOn(t testing.TB, e *env, mut func(*stepup.TOTPConfig)) *totpEnv {
	t.Helper()
	sealer, err := stepup.NewMemorySealer()
	require.NoError(t, err)
	st := stepup.NewMemoryOTPStore()
	cfg := stepup.TOTPConfig{Name: "TOTP", Issuer: "Travel Co", Enrollments: st, Sealer: sealer, Store: e.store}
	if mut != nil {
		mut(&cfg)
	}
	c, err := stepup.NewTOTPCheck(cfg)
	require.NoError(t, err)
	return &totpEnv{env: e, check: c, store: st, sealer: sealer}
}

// enroll enrolls subject and confirms with the current code; it returns
// the key.
func (te *totpEnv) enroll(t testing.TB, subject string) stepup.OTPKey {
	t.Helper()
	ctx := context.Background()
	setup, err := te.check.Enroll(ctx, subject, subject+"@example.com", te.clock.Now())
	require.NoError(t, err)
	u, err := otp.NewKeyFromURL(setup.URI)
	require.NoError(t, err)
	secret, err := stepup.ParseSecret(u.Secret())
	require.NoError(t, err)
	k := stepup.OTPKey{Secret: secret, Algorithm: stepup.Algorithm(u.Algorithm().String()), Digits: int(u.Digits())}
	code, err := k.TOTP(te.clock.Now())
	require.NoError(t, err)
	require.NoError(t, te.check.Confirm(ctx, subject, code, te.clock.Now()))
	return k
}

func TestTOTPEnrollment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, func(c *stepup.TOTPConfig) { c.Algorithm = stepup.SHA256; c.Digits = 8 })
	setup, err := te.check.Enroll(ctx, "user-alice", "alice@example.com", te.clock.Now())
	require.NoError(t, err)
	u, err := otp.NewKeyFromURL(setup.URI)
	require.NoError(t, err)
	require.Equal(t, "totp", u.Type())
	require.Equal(t, "Travel Co", u.Issuer())
	require.Equal(t, "alice@example.com", u.AccountName())
	require.Equal(t, otp.AlgorithmSHA256, u.Algorithm())
	require.Equal(t, otp.DigitsEight, u.Digits())
	require.Equal(t, uint64(30), u.Period())
	require.Equal(t, setup.Secret, u.Secret())
	secret, err := stepup.ParseSecret(setup.Secret)
	require.NoError(t, err)
	require.Len(t, secret, 32, "SHA256 seeds are 32 bytes")
	img, err := png.Decode(bytes.NewReader(setup.QRCode))
	require.NoError(t, err)
	require.Equal(t, stepup.DefaultQRSize, img.Bounds().Dx())

	// Not enrolled until confirmed.
	ok, err := te.check.Enrolled(ctx, "user-alice")
	require.NoError(t, err)
	require.False(t, ok)
	r, err := te.check.Authorize(ctx, te.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonNotEnrolled, r.Reason)

	k := stepup.OTPKey{Secret: secret, Algorithm: stepup.SHA256, Digits: 8}
	require.ErrorIs(t, te.check.Confirm(ctx, "user-alice", "00000000", te.clock.Now()), stepup.ErrWrongCode)
	code, err := k.TOTP(te.clock.Now())
	require.NoError(t, err)
	require.NoError(t, te.check.Confirm(ctx, "user-alice", code, te.clock.Now()))
	require.ErrorIs(t, te.check.Confirm(ctx, "user-alice", code, te.clock.Now()), stepup.ErrNoPendingEnrollment)

	// The seed is stored sealed, never in the clear.
	rec, err := te.store.Get(ctx, "user-alice", stepup.KindTOTP)
	require.NoError(t, err)
	require.False(t, bytes.Contains(rec.SealedSecret, secret))

	// The confirming code's step is consumed.
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCode, r.Reason)

	te.clock.Advance(30 * time.Second)
	code, err = k.TOTP(te.clock.Now())
	require.NoError(t, err)
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, []string{"otp"}, r.AMR)
	require.Equal(t, "user-alice", r.Subject)
}

func TestTOTPEnrollmentExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	setup, err := te.check.Enroll(ctx, "user-alice", "alice", te.clock.Now())
	require.NoError(t, err)
	te.clock.Advance(stepup.DefaultEnrollTTL)
	secret, _ := stepup.ParseSecret(setup.Secret)
	code, _ := stepup.OTPKey{Secret: secret}.TOTP(te.clock.Now())
	require.ErrorIs(t, te.check.Confirm(ctx, "user-alice", code, te.clock.Now()), stepup.ErrNoPendingEnrollment)
}

func TestTOTPCheckChallenge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	te.enroll(t, "user-alice")
	r, err := te.check.Authorize(ctx, te.req("", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonSubjectRequired, r.Reason)
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"digits": 6.0, "period": 30.0}, challengeJSON(t, r))
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", `{"code":123456}`))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonMalformed, r.Reason)
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: "12345"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCode, r.Reason)
	require.EqualValues(t, 4, challengeJSON(t, r)["attempts_left"])
}

// A code replayed 5 s and 85 s later is refused. With skew 1 a code is
// accepted during 90 s, from the start of the step before its own to the
// end of the step after; first used at second 2 of that window, it is
// still inside it 5 s and 85 s later, so only the replay cache refuses
// it. A code used in its own step is refused 5 s later too.
func TestTOTPReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	k := te.enroll(t, "user-alice")
	// Second 2 of a step, two steps after the enrollment's.
	te.clock.Advance(60*time.Second - time.Duration(te.clock.Now().Unix()%30)*time.Second + 2*time.Second)
	require.EqualValues(t, 2, te.clock.Now().Unix()%30)

	for _, tc := range []struct {
		name  string
		ahead time.Duration // of the server's clock, the phone's
	}{{"next step's code", 30 * time.Second}, {"own step's code", 0}} {
		code, err := k.TOTP(te.clock.Now().Add(tc.ahead))
		require.NoError(t, err)
		r, err := te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
		requireStatus(t, auth.CheckSuccess, r, err)
		for _, wait := range []time.Duration{5 * time.Second, 80 * time.Second} { // 5 s, then 85 s after the use
			te.clock.Advance(wait)
			_, inWindow := k.VerifyTOTP(code, te.clock.Now(), stepup.DefaultSkew, -1)
			if tc.ahead == 0 && wait == 80*time.Second {
				require.False(t, inWindow, "%s: out of its window 85 s later anyway", tc.name)
				continue
			}
			require.True(t, inWindow, "%s: still in its window", tc.name)
			r, err = te.check.Authorize(ctx, te.req("user-alice", "s2", stepup.OTPAnswer{Code: code}))
			requireStatus(t, auth.CheckChallenge, r, err)
			require.Equal(t, stepup.ReasonWrongCode, r.Reason, "%s replayed", tc.name)
		}
		te.clock.Advance(35 * time.Second) // second 2 of a step past every one used so far
	}
}

// The check's default skew, with a fixed clock at seconds 29 and 30 of a
// step: at second 29 the next step's code passes (a phone clock a second
// ahead); at second 30 the previous step's (typed at second 29, sent a
// second later); two steps away does not.
func TestTOTPCheckSkewAtStepBoundary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		second int64 // of the server's step
		offset time.Duration
		ok     bool
	}{
		{"29: current step", 29, 0, true},
		{"29: next step", 29, 30 * time.Second, true},
		{"29: previous step", 29, -30 * time.Second, true},
		{"29: two steps ahead", 29, 60 * time.Second, false},
		{"30: current step", 30, 0, true},
		{"30: previous step", 30, -30 * time.Second, true},
		{"30: two steps back", 30, -60 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := newTOTP(t, nil)
			k := te.enroll(t, "user-alice")
			// Step boundary well after the enrollment's step, then the second.
			te.clock.Advance(120*time.Second - time.Duration(te.clock.Now().Unix()%30)*time.Second + time.Duration(tc.second)*time.Second)
			code, err := k.TOTP(te.clock.Now().Add(tc.offset))
			require.NoError(t, err)
			r, err := te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
			require.NoError(t, err)
			require.Equal(t, tc.ok, r.Status == auth.CheckSuccess, "reason %q", r.Reason)
		})
	}
}

// 100 concurrent submissions of one valid code: exactly one accepted.
func TestTOTPConcurrentSubmissions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	k := te.enroll(t, "user-alice")
	te.clock.Advance(30 * time.Second)
	code, err := k.TOTP(te.clock.Now())
	require.NoError(t, err)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			r, err := te.check.Authorize(ctx, te.req("user-alice", "s"+string(rune('0'+i%10)), stepup.OTPAnswer{Code: code}))
			require.NoError(t, err)
			if r.Status == auth.CheckSuccess {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

// 10 wrong codes then the right one: refused while blocked. The wrong
// codes are well formed, spread over three auth sessions and two clients
// (apps) of the user: they share one budget.
func TestTOTPBlocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	k := te.enroll(t, "user-alice")
	te.clock.Advance(30 * time.Second)
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := k.TOTP(te.clock.Now().Add(d))
		require.NoError(t, err)
		valid[c] = true
	}
	wrong := 0
	for i := 0; wrong < 10; i++ {
		code := fmt.Sprintf("%06d", 100000+i*7919)
		if valid[code] {
			continue
		}
		req := te.req("user-alice", "s"+strconv.Itoa(wrong%3), stepup.OTPAnswer{Code: code})
		req.Client.ID = "client-" + strconv.Itoa(wrong%2)
		r, err := te.check.Authorize(ctx, req)
		require.NoError(t, err)
		if wrong >= stepup.DefaultMaxFailures-1 {
			require.Equal(t, auth.CheckBlocked, r.Status, "wrong code %d", wrong+1)
		} else {
			require.Equal(t, stepup.ReasonWrongCode, r.Reason)
		}
		wrong++
	}
	code, _ := k.TOTP(te.clock.Now())
	r, err := te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckBlocked, r, err)
	require.Equal(t, te.clock.Now().Add(stepup.DefaultBlockFor), r.BlockedUntil, "the block started at the fifth failure, all at one instant")
	te.clock.Advance(stepup.DefaultBlockFor)
	code, _ = k.TOTP(te.clock.Now())
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)
}

func TestTOTPSkewNone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, func(c *stepup.TOTPConfig) { c.Skew = stepup.SkewNone })
	k := te.enroll(t, "user-alice")
	te.clock.Advance(60 * time.Second)
	prev, _ := k.TOTP(te.clock.Now().Add(-30 * time.Second))
	r, err := te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: prev}))
	requireStatus(t, auth.CheckChallenge, r, err)
	now, _ := k.TOTP(te.clock.Now())
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: now}))
	requireStatus(t, auth.CheckSuccess, r, err)
}

// A sealed seed copied into another user's record does not open: the
// check fails with an error (503), never a success.
func TestTOTPSealedSeedBoundToRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	k := te.enroll(t, "user-alice")
	te.enroll(t, "user-bob")
	alice, err := te.store.Get(ctx, "user-alice", stepup.KindTOTP)
	require.NoError(t, err)
	bob, err := te.store.Get(ctx, "user-bob", stepup.KindTOTP)
	require.NoError(t, err)
	bob.SealedSecret = alice.SealedSecret
	require.NoError(t, te.store.Put(ctx, bob))
	te.clock.Advance(30 * time.Second)
	code, _ := k.TOTP(te.clock.Now())
	r, err := te.check.Authorize(ctx, te.req("user-bob", "s1", stepup.OTPAnswer{Code: code}))
	require.ErrorIs(t, err, stepup.ErrUnsealed)
	require.NotEqual(t, auth.CheckSuccess, r.Status)
}

func TestTOTPConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sealer, _ := stepup.NewMemorySealer()
	ok := stepup.TOTPConfig{Name: "TOTP", Issuer: "x", Enrollments: stepup.NewMemoryOTPStore(), Sealer: sealer, Store: e.store}
	for name, mut := range map[string]func(*stepup.TOTPConfig){
		"no issuer":   func(c *stepup.TOTPConfig) { c.Issuer = "" },
		"no store":    func(c *stepup.TOTPConfig) { c.Enrollments = nil },
		"no sealer":   func(c *stepup.TOTPConfig) { c.Sealer = nil },
		"bad digits":  func(c *stepup.TOTPConfig) { c.Digits = 7 },
		"bad alg":     func(c *stepup.TOTPConfig) { c.Algorithm = "MD5" },
		"lower alg":   func(c *stepup.TOTPConfig) { c.Algorithm = "sha1" },
		"big skew":    func(c *stepup.TOTPConfig) { c.Skew = 3 },
		"bad skew":    func(c *stepup.TOTPConfig) { c.Skew = -2 },
		"tiny QR":     func(c *stepup.TOTPConfig) { c.QRSize = 10 },
		"no kv store": func(c *stepup.TOTPConfig) { c.Store = nil },
	} {
		cfg := ok
		mut(&cfg)
		_, err := stepup.NewTOTPCheck(cfg)
		require.ErrorIs(t, err, stepup.ErrInvalidConfig, name)
	}
}

// securestore's server sealer is a stepup.Sealer (issue 7: TOTP seeds are
// sealed with it): enrollment, sign-in, a key rotation, and a seed copied
// to another user's record that does not open.
var _ stepup.Sealer = (*securestore.Sealer)(nil)

func TestTOTPWithSecurestoreSealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1, k2 := securestore.GenerateSealerKey(1), securestore.GenerateSealerKey(2)
	old, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k1}})
	require.NoError(t, err)
	te := newTOTP(t, func(c *stepup.TOTPConfig) { c.Sealer = old })
	k := te.enroll(t, "user-alice")
	te.enroll(t, "user-bob")
	rec, err := te.store.Get(ctx, "user-alice", stepup.KindTOTP)
	require.NoError(t, err)
	require.False(t, bytes.Contains(rec.SealedSecret, k.Secret), "sealed, not in the clear")

	// After a rotation (k2 seals, k1 still opens) the old seeds still work.
	rotated, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k2, k1}})
	require.NoError(t, err)
	c, err := stepup.NewTOTPCheck(stepup.TOTPConfig{Name: "TOTP", Issuer: "Travel Co", Enrollments: te.store, Sealer: rotated, Store: te.env.store})
	require.NoError(t, err)
	te.clock.Advance(30 * time.Second)
	code, err := k.TOTP(te.clock.Now())
	require.NoError(t, err)
	r, err := c.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)

	// Alice's sealed seed in Bob's record does not open: an error, never a success.
	bob, err := te.store.Get(ctx, "user-bob", stepup.KindTOTP)
	require.NoError(t, err)
	bob.SealedSecret = rec.SealedSecret
	require.NoError(t, te.store.Put(ctx, bob))
	te.clock.Advance(30 * time.Second)
	code, err = k.TOTP(te.clock.Now())
	require.NoError(t, err)
	r, err = c.Authorize(ctx, te.req("user-bob", "s1", stepup.OTPAnswer{Code: code}))
	require.ErrorIs(t, err, securestore.ErrCorruptRecord)
	require.NotEqual(t, auth.CheckSuccess, r.Status)

	// A sealer without the key does not open it either.
	other, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k2}})
	require.NoError(t, err)
	c, err = stepup.NewTOTPCheck(stepup.TOTPConfig{Name: "TOTP", Issuer: "Travel Co", Enrollments: te.store, Sealer: other, Store: te.env.store})
	require.NoError(t, err)
	r, err = c.Authorize(ctx, te.req("user-alice", "s2", stepup.OTPAnswer{Code: code}))
	require.Error(t, err)
	require.NotEqual(t, auth.CheckSuccess, r.Status)
}

func TestMemorySealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := stepup.NewMemorySealer()
	require.NoError(t, err)
	sealed, err := s.Seal(ctx, []byte("seed"), []byte("ad"))
	require.NoError(t, err)
	out, err := s.Open(ctx, sealed, []byte("ad"))
	require.NoError(t, err)
	require.Equal(t, "seed", string(out))
	_, err = s.Open(ctx, sealed, []byte("other"))
	require.ErrorIs(t, err, stepup.ErrUnsealed)
	sealed[len(sealed)-1] ^= 1
	_, err = s.Open(ctx, sealed, []byte("ad"))
	require.ErrorIs(t, err, stepup.ErrUnsealed)
	_, err = s.Open(ctx, []byte("short"), nil)
	require.ErrorIs(t, err, stepup.ErrUnsealed)
	other, _ := stepup.NewMemorySealer()
	sealed, _ = s.Seal(ctx, []byte("seed"), nil)
	_, err = other.Open(ctx, sealed, nil)
	require.ErrorIs(t, err, stepup.ErrUnsealed)
}

func TestTOTPConfirmBlocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	_, err := te.check.Enroll(ctx, "user-alice", "alice", te.clock.Now())
	require.NoError(t, err)
	for range stepup.DefaultMaxFailures - 1 {
		require.ErrorIs(t, te.check.Confirm(ctx, "user-alice", "12345x", te.clock.Now()), stepup.ErrWrongCode)
	}
	err = te.check.Confirm(ctx, "user-alice", "12345x", te.clock.Now())
	require.ErrorIs(t, err, stepup.ErrBlocked)
	var be *stepup.BlockedError
	require.ErrorAs(t, err, &be)
	require.Equal(t, te.clock.Now().Add(stepup.DefaultBlockFor), be.Until)
	require.NotContains(t, err.Error(), "12345x")
}

func TestTOTPEnrollSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	setup, err := te.check.EnrollSecret(ctx, "user-alice", "alice", "gezd gnbv-gy3t qojq-gezd gnbv gy3t qojq", te.clock.Now())
	require.NoError(t, err)
	require.Equal(t, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", setup.Secret, "stored and shown canonically")
	require.Contains(t, setup.URI, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	code, _ := stepup.OTPKey{Secret: []byte("12345678901234567890")}.TOTP(te.clock.Now())
	require.NoError(t, te.check.Confirm(ctx, "user-alice", code, te.clock.Now()))

	for _, bad := range []string{"", "  ", "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ", "GEZDGNBV"} {
		_, err := te.check.EnrollSecret(ctx, "user-bob", "bob", bad, te.clock.Now())
		require.ErrorIs(t, err, stepup.ErrInvalidSecret, bad)
	}
}

// failingAdvance is an OTPStore whose Advance fails.
type failingAdvance struct{ *stepup.MemoryOTPStore }

func (failingAdvance) Advance(context.Context, string, stepup.OTPKind, string, int64) error {
	return errStoreDown
}

func TestTOTPStoreErrorsFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTOTP(t, nil)
	k := te.enroll(t, "user-alice")
	te.clock.Advance(30 * time.Second)
	code, _ := k.TOTP(te.clock.Now())

	c, err := stepup.NewTOTPCheck(stepup.TOTPConfig{Name: "TOTP", Issuer: "x", Enrollments: failingAdvance{te.store}, Sealer: te.sealer, Store: te.env.store})
	require.NoError(t, err)
	r, err := c.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	require.ErrorIs(t, err, errStoreDown)
	require.NotEqual(t, auth.CheckSuccess, r.Status)

	c, err = stepup.NewTOTPCheck(stepup.TOTPConfig{Name: "TOTP", Issuer: "x", Enrollments: te.store, Sealer: te.sealer, Store: failingStore{}})
	require.NoError(t, err)
	r, err = c.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	require.ErrorIs(t, err, errStoreDown)
	require.NotEqual(t, auth.CheckSuccess, r.Status)

	// The code was not used up by the failed attempts.
	r, err = te.check.Authorize(ctx, te.req("user-alice", "s1", stepup.OTPAnswer{Code: code}))
	requireStatus(t, auth.CheckSuccess, r, err)
}
