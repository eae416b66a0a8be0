package stepup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

// allChecks builds every check of the package, with a user enrolled in
// each, on a fresh store.
func allChecks(t testing.TB) (*env, []auth.Check) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	pw, _ := newPasswordCheck(t, e)
	sms, _ := newSMSCheck(t, e)
	te := newTOTPOn(t, e, nil)
	te.enroll(t, "user-alice")
	sealer, _ := stepup.NewMemorySealer()
	hotp, err := stepup.NewHOTPCheck(stepup.HOTPConfig{Name: "HOTP", Enrollments: stepup.NewMemoryOTPStore(), Sealer: sealer, Store: e.store})
	require.NoError(t, err)
	require.NoError(t, hotp.Import(ctx, "user-alice", stepup.OTPKey{Secret: []byte("12345678901234567890")}, 0, e.clock.Now()))
	rec, err := stepup.NewRecoveryCheck(stepup.RecoveryConfig{Name: "Recovery", Codes: stepup.NewMemoryRecoveryStore(), Store: e.store})
	require.NoError(t, err)
	_, err = rec.Generate(ctx, "user-alice")
	require.NoError(t, err)
	pin, err := stepup.NewPINCheck(stepup.PINConfig{Name: "PIN", PINs: stepup.NewMemoryPINStore(), Hasher: weakHasher(t), Store: e.store})
	require.NoError(t, err)
	require.NoError(t, pin.SetPIN(ctx, "device-1", "user-alice", "4821", e.clock.Now()))
	dk, err := stepup.NewDeviceKeyCheck(stepup.DeviceKeyConfig{Name: "DeviceKey", Keys: stepup.NewMemoryDeviceKeyStore(), Store: e.store})
	require.NoError(t, err)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, dk.Enroll(ctx, stepup.DeviceKey{ClientID: "client-1", Subject: "user-alice", PublicKey: &k.PublicKey}))
	ch, err := stepup.NewByChannel(stepup.ChannelConfig{Name: "Login", Store: e.store, Methods: map[string][]auth.Check{"phone": {pw, te.check}}})
	require.NoError(t, err)
	return e, []auth.Check{pw, sms, te.check, hotp, rec, pin, dk, ch}
}

// FuzzCheckAnswers sends arbitrary answers to every check: none may
// panic, fail with an error (the stores here never fail), or answer an
// invalid status; and no garbage may succeed.
func FuzzCheckAnswers(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"correct horse"}`, `{"code":"123456"}`, `{"resend":true}`, `{"pin":"4821"}`,
		`{"nonce":"abc","signature":"AAAA"}`, `{"method":"UserLogin","answer":{"username":"alice","password":"x"}}`,
		`{"code":"ABCD-EFGH-JKMN-PQRS"}`, `null`, `[]`, `"x"`, `{`, `{"code":null}`, `{"code":"１２３４５６"}`,
		`{"username":"alice","password":"x","password":"y"}`, `{"method":"TOTP","answer":null}`, "\x00", `{"a":` + string(make([]byte, 9000)) + `}`,
	} {
		f.Add([]byte(s))
	}
	e, checks := allChecks(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, c := range checks {
			for _, subject := range []string{"", "user-alice"} {
				r, err := c.Authorize(ctx, &auth.CheckRequest{
					Client:  &auth.Client{ID: "client-1", AppID: "travel", Channel: "phone", DeviceID: "device-1"},
					Subject: subject, SessionID: "fuzz", Answer: json.RawMessage(answer), Now: e.clock.Now(),
				})
				require.NoError(t, err, c.Name())
				require.Contains(t, []auth.CheckStatus{auth.CheckChallenge, auth.CheckBlocked, auth.CheckRefused, auth.CheckSuccess}, r.Status)
				if r.Status == auth.CheckSuccess {
					// Only the password and PIN checks can be answered without
					// a secret the fuzzer cannot know (the seeds hold them).
					require.Contains(t, []string{"UserLogin", "Login", "PIN"}, c.Name(), "answer %q", answer)
				}
			}
		}
	})
}
