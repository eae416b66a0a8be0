package stepup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

func TestRecoveryCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	st := stepup.NewMemoryRecoveryStore()
	c, err := stepup.NewRecoveryCheck(stepup.RecoveryConfig{Name: "Recovery", Codes: st, Store: e.store})
	require.NoError(t, err)

	r, err := c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonNotEnrolled, r.Reason)

	codes, err := c.Generate(ctx, "user-alice")
	require.NoError(t, err)
	require.Len(t, codes, stepup.DefaultRecoveryCodes)
	seen := map[string]bool{}
	for _, code := range codes {
		require.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`, code)
		require.False(t, seen[code])
		seen[code] = true
	}

	r, err = c.Authorize(ctx, e.req("user-alice", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"format": "XXXX-XXXX-XXXX-XXXX"}, challengeJSON(t, r))

	// Forgiving entry: lower case, no hyphens, O for 0, I/L for 1.
	typed := strings.ToLower(strings.ReplaceAll(codes[0], "-", ""))
	typed = strings.NewReplacer("0", "o", "1", "l").Replace(typed)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: typed}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, []string{"recovery"}, r.AMR)
	left, err := c.Remaining(ctx, "user-alice")
	require.NoError(t, err)
	require.Equal(t, stepup.DefaultRecoveryCodes-1, left)

	// Single use.
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: codes[0]}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongCode, r.Reason)
	// Another user's code does not work.
	bob, err := c.Generate(ctx, "user-bob")
	require.NoError(t, err)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: bob[0]}))
	requireStatus(t, auth.CheckChallenge, r, err)
	// Malformed.
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: "ABCD-EFGH-!!!!-0000"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonMalformed, r.Reason)
	// Regenerating invalidates the old set.
	_, err = c.Generate(ctx, "user-alice")
	require.NoError(t, err)
	r, err = c.Authorize(ctx, e.req("user-alice", "s1", stepup.OTPAnswer{Code: codes[1]}))
	requireStatus(t, auth.CheckChallenge, r, err)
}

func TestPINCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	c, err := stepup.NewPINCheck(stepup.PINConfig{Name: "PIN", PINs: stepup.NewMemoryPINStore(), Hasher: weakHasher(t), Store: e.store})
	require.NoError(t, err)
	for _, bad := range []string{"", "123", "12a4", "1111", "1234", "9876", "8901", "3210987", "1234567890123"} {
		require.ErrorIs(t, c.SetPIN(ctx, "device-1", "user-alice", bad, e.clock.Now()), stepup.ErrInvalidPIN, bad)
	}
	require.NoError(t, c.SetPIN(ctx, "device-1", "user-alice", "4821", e.clock.Now()))

	watch := func(subject, answer any) *auth.CheckRequest {
		r := e.req("", "s1", answer)
		if s, ok := subject.(string); ok {
			r.Subject = s
		}
		r.Client.Channel = "watch"
		return r
	}
	r, err := c.Authorize(ctx, watch(nil, nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, map[string]any{"min_length": 4.0, "max_length": 12.0}, challengeJSON(t, r))

	r, err = c.Authorize(ctx, watch(nil, stepup.PINAnswer{PIN: "4822"}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonWrongPIN, r.Reason)
	require.EqualValues(t, 2, challengeJSON(t, r)["attempts_left"], "a PIN has its own, smaller budget")

	r, err = c.Authorize(ctx, watch(nil, stepup.PINAnswer{PIN: "4821"}))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, "user-alice", r.Subject)
	require.Equal(t, []string{"pin"}, r.AMR)

	r, err = c.Authorize(ctx, watch("user-bob", stepup.PINAnswer{PIN: "4821"}))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonSubjectMismatch, r.Reason)

	other := e.req("", "s1", stepup.PINAnswer{PIN: "4821"})
	other.Client.DeviceID = "device-2"
	r, err = c.Authorize(ctx, other)
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonNotEnrolled, r.Reason)

	for range 3 {
		r, err = c.Authorize(ctx, watch(nil, stepup.PINAnswer{PIN: "0000"}))
		require.NoError(t, err)
	}
	require.Equal(t, auth.CheckBlocked, r.Status)
	r, err = c.Authorize(ctx, watch(nil, stepup.PINAnswer{PIN: "4821"}))
	requireStatus(t, auth.CheckBlocked, r, err)
}

type deviceKeyEnv struct {
	*env
	check *stepup.DeviceKeyCheck
	key   *ecdsa.PrivateKey
}

func newDeviceKey(t *testing.T) *deviceKeyEnv {
	t.Helper()
	e := newEnv(t)
	c, err := stepup.NewDeviceKeyCheck(stepup.DeviceKeyConfig{Name: "DeviceKey", Keys: stepup.NewMemoryDeviceKeyStore(), Store: e.store})
	require.NoError(t, err)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	require.NoError(t, c.Enroll(context.Background(), stepup.DeviceKey{ClientID: "client-1", Subject: "user-alice", PublicKey: &k.PublicKey, Biometry: stepup.AMRFingerprint}))
	return &deviceKeyEnv{env: e, check: c, key: k}
}

func (d *deviceKeyEnv) sign(t *testing.T, clientID, nonce string, raw bool) string {
	t.Helper()
	h := sha256.Sum256(stepup.DeviceKeySigningInput(clientID, nonce))
	if raw {
		r, s, err := ecdsa.Sign(rand.Reader, d.key, h[:])
		require.NoError(t, err)
		b := make([]byte, 64)
		r.FillBytes(b[:32])
		s.FillBytes(b[32:])
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, h[:])
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(sig)
}

func (d *deviceKeyEnv) nonce(t *testing.T) string {
	t.Helper()
	r, err := d.check.Authorize(context.Background(), d.req("", "s1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	ch := challengeJSON(t, r)
	require.Equal(t, "ES256", ch["alg"])
	require.Equal(t, "fpt", ch["biometry"])
	return ch["nonce"].(string)
}

func TestDeviceKeyCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDeviceKey(t)
	for _, raw := range []bool{false, true} {
		n := d.nonce(t)
		r, err := d.check.Authorize(ctx, d.req("", "s1", stepup.DeviceKeyAnswer{Nonce: n, Signature: d.sign(t, "client-1", n, raw)}))
		requireStatus(t, auth.CheckSuccess, r, err)
		require.Equal(t, "user-alice", r.Subject)
		require.Equal(t, []string{"hwk", "fpt"}, r.AMR)
		require.Equal(t, stepup.ACRMultiFactor, stepup.ACRFor(r.AMR))

		// The nonce is single use.
		r, err = d.check.Authorize(ctx, d.req("", "s1", stepup.DeviceKeyAnswer{Nonce: n, Signature: d.sign(t, "client-1", n, raw)}))
		requireStatus(t, auth.CheckChallenge, r, err)
		require.Equal(t, stepup.ReasonExpired, r.Reason)
	}
	// A signature for another client, or by another key, is refused.
	n := d.nonce(t)
	r, err := d.check.Authorize(ctx, d.req("", "s1", stepup.DeviceKeyAnswer{Nonce: n, Signature: d.sign(t, "client-2", n, false)}))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, stepup.ReasonBadSignature, r.Reason)
	require.NotEqual(t, n, challengeJSON(t, r)["nonce"], "a fresh nonce after a failure")

	// A nonce issued to another client is refused.
	n = d.nonce(t)
	other := d.req("", "s1", stepup.DeviceKeyAnswer{Nonce: n, Signature: d.sign(t, "client-2", n, false)})
	other.Client.ID = "client-2"
	r, err = d.check.Authorize(ctx, other)
	requireStatus(t, auth.CheckRefused, r, err) // client-2 has no key

	for _, bad := range []string{`{"nonce":"x"}`, `{"nonce":"x","signature":"!!"}`, `{"nonce":"","signature":"AAAA"}`, `{"signature":"AAAA","nonce":"x","x":1}`} {
		r, err = d.check.Authorize(ctx, d.req("", "s1", bad))
		requireStatus(t, auth.CheckChallenge, r, err)
		require.Equal(t, stepup.ReasonMalformed, r.Reason, bad)
	}

	r, err = d.check.Authorize(ctx, d.req("user-bob", "s1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonSubjectMismatch, r.Reason)
}

func TestDeviceKeyEnroll(t *testing.T) {
	t.Parallel()
	d := newDeviceKey(t)
	ctx := context.Background()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, k := range map[string]stepup.DeviceKey{
		"no key":       {ClientID: "c", Subject: "s"},
		"P-384":        {ClientID: "c", Subject: "s", PublicKey: &p384.PublicKey},
		"off curve":    {ClientID: "c", Subject: "s", PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}},
		"bad biometry": {ClientID: "c", Subject: "s", PublicKey: &d.key.PublicKey, Biometry: "dna"},
		"no client":    {Subject: "s", PublicKey: &d.key.PublicKey},
	} {
		require.ErrorIs(t, d.check.Enroll(ctx, k), stepup.ErrInvalidKey, name)
	}
}

func TestDeviceKeyConcurrentAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDeviceKey(t)
	n := d.nonce(t)
	sig := d.sign(t, "client-1", n, false)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r, err := d.check.Authorize(ctx, d.req("", "s1", stepup.DeviceKeyAnswer{Nonce: n, Signature: sig}))
			require.NoError(t, err)
			if r.Status == auth.CheckSuccess {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load(), "one nonce, one success")
}

func TestByChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	pw, _ := newPasswordCheck(t, e)
	pin, err := stepup.NewPINCheck(stepup.PINConfig{Name: "PIN", PINs: stepup.NewMemoryPINStore(), Hasher: weakHasher(t), Store: e.store})
	require.NoError(t, err)
	require.NoError(t, pin.SetPIN(ctx, "watch-1", "user-alice", "4821", e.clock.Now()))
	te := newTOTPOn(t, e, nil)
	totpCheck := te.check
	k := te.enroll(t, "user-alice")

	c, err := stepup.NewByChannel(stepup.ChannelConfig{Name: "Login", Store: e.store, Methods: map[string][]auth.Check{
		"watch": {pin},
		"web":   {pw, totpCheck},
	}, Apps: map[string]map[string][]auth.Check{"kiosk": {"web": {pw}}}})
	require.NoError(t, err)

	client := func(app, channel, device string, answer any) *auth.CheckRequest {
		r := e.req("", "sess-"+channel+app, answer)
		r.Client.AppID, r.Client.Channel, r.Client.DeviceID = app, channel, device
		return r
	}

	// Watch: PIN.
	r, err := c.Authorize(ctx, client("travel", "watch", "watch-1", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	ch := challengeJSON(t, r)
	require.Equal(t, "PIN", ch["method"])
	r, err = c.Authorize(ctx, client("travel", "watch", "watch-1", `{"method":"PIN","answer":{"pin":"4821"}}`))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, "user-alice", r.Subject)

	// Web: password then TOTP.
	r, err = c.Authorize(ctx, client("travel", "web", "pc", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	ch = challengeJSON(t, r)
	require.Equal(t, "UserLogin", ch["method"])
	require.EqualValues(t, 1, ch["step"])
	require.EqualValues(t, 2, ch["steps"])
	r, err = c.Authorize(ctx, client("travel", "web", "pc", `{"method":"UserLogin","answer":{"username":"alice","password":"correct horse"}}`))
	requireStatus(t, auth.CheckChallenge, r, err)
	ch = challengeJSON(t, r)
	require.Equal(t, "TOTP", ch["method"])
	require.EqualValues(t, 2, ch["step"])
	// An answer for the wrong method is ignored.
	r, err = c.Authorize(ctx, client("travel", "web", "pc", `{"method":"UserLogin","answer":{"username":"alice","password":"correct horse"}}`))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.Equal(t, "TOTP", challengeJSON(t, r)["method"])
	e.clock.Advance(30 * time.Second)
	code, _ := k.TOTP(e.clock.Now())
	r, err = c.Authorize(ctx, client("travel", "web", "pc", `{"method":"TOTP","answer":{"code":"`+code+`"}}`))
	requireStatus(t, auth.CheckSuccess, r, err)
	require.Equal(t, "user-alice", r.Subject)
	require.Equal(t, []string{"mfa", "otp", "pwd"}, r.AMR)

	// Per-app override.
	r, err = c.Authorize(ctx, client("kiosk", "web", "k", nil))
	requireStatus(t, auth.CheckChallenge, r, err)
	require.EqualValues(t, 1, challengeJSON(t, r)["steps"])

	// No method for the channel.
	r, err = c.Authorize(ctx, client("travel", "tv", "tv-1", nil))
	requireStatus(t, auth.CheckRefused, r, err)
	require.Equal(t, stepup.ReasonNoMethod, r.Reason)
}
