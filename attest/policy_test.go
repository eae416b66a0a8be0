package attest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

func mustInsecure(t testing.TB) *InsecureDevelopmentVerifier {
	t.Helper()
	v, err := NewInsecureDevelopmentVerifier("insecure-development")
	require.NoError(t, err)
	return v
}

func TestInsecureDevelopmentVerifier(t *testing.T) {
	t.Parallel()
	_, err := NewInsecureDevelopmentVerifier("")
	require.Error(t, err)
	_, err = NewInsecureDevelopmentVerifier("yes")
	require.Error(t, err)

	ctx := context.Background()
	v := mustInsecure(t)
	key := newKey(t)
	jkt, err := thumbprint(&key.PublicKey)
	require.NoError(t, err)
	ev, err := InsecureDevelopmentEvidence(key, "nonce-1")
	require.NoError(t, err)
	ch, _ := Challenge("nonce-1", jkt)

	res, err := v.Verify(ctx, &Evidence{Attestation: ev, Challenge: ch, KeyThumbprint: jkt})
	require.NoError(t, err)
	require.True(t, res.Insecure())
	require.Equal(t, VerdictInsecure, res.Verdict)
	require.Equal(t, "true", res.Facts()["insecure"])
	require.Contains(t, res.Claims["warning"], "INSECURE")

	// Bound to the nonce: another nonce's challenge fails.
	other, _ := Challenge("nonce-2", jkt)
	_, err = v.Verify(ctx, &Evidence{Attestation: ev, Challenge: other, KeyThumbprint: jkt})
	require.ErrorIs(t, err, ErrSignature)
	// Bound to the key: another client key fails.
	otherKey := newKey(t)
	otherJKT, _ := thumbprint(&otherKey.PublicKey)
	ch2, _ := Challenge("nonce-1", otherJKT)
	_, err = v.Verify(ctx, &Evidence{Attestation: ev, Challenge: ch2, KeyThumbprint: otherJKT})
	require.ErrorIs(t, err, ErrKeyBinding)
	_, err = v.Verify(ctx, &Evidence{Attestation: ev, Challenge: ch})
	require.ErrorIs(t, err, ErrKeyBinding)
	// Garbage.
	for _, bad := range []string{`{}`, `{"jwk":{"kty":"oct","k":"AAAA"},"signature":"AA"}`, `[]`} {
		_, err = v.Verify(ctx, &Evidence{Attestation: json.RawMessage(bad), Challenge: ch, KeyThumbprint: jkt})
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
	var w map[string]any
	require.NoError(t, json.Unmarshal(ev, &w))
	w["signature"] = "!!"
	bad, _ := json.Marshal(w)
	_, err = v.Verify(ctx, &Evidence{Attestation: bad, Challenge: ch, KeyThumbprint: jkt})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestChallenge(t *testing.T) {
	t.Parallel()
	a, err := Challenge("n", "k")
	require.NoError(t, err)
	require.Len(t, a, ChallengeSize)
	require.Equal(t, sha([]byte("moat-attest-v1\nn\nk")), a)
	b, _ := Challenge("n\nk", "x")
	require.Nil(t, b)
	for _, c := range [][2]string{{"", "k"}, {"n", ""}, {"n\n", "k"}, {"n", "k\n"}} {
		_, err := Challenge(c[0], c[1])
		require.Error(t, err, c)
	}
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := kvtest.NewClock()
	store := kv.NewMemory(kv.MemoryConfig{Now: clock.Now})
	c, err := NewChallenges(store, time.Minute)
	require.NoError(t, err)
	ch, err := c.Issue(ctx, []byte("key-id"))
	require.NoError(t, err)
	b, err := c.Consume(ctx, ch)
	require.NoError(t, err)
	require.Equal(t, []byte("key-id"), b)
	_, err = c.Consume(ctx, ch)
	require.ErrorIs(t, err, ErrChallengeInvalid)
	_, err = c.Consume(ctx, "never-issued")
	require.ErrorIs(t, err, ErrChallengeInvalid)
	// Expiry.
	ch, err = c.Issue(ctx, nil)
	require.NoError(t, err)
	clock.Advance(time.Minute + time.Second)
	_, err = c.Consume(ctx, ch)
	require.ErrorIs(t, err, ErrChallengeInvalid)
	_, err = NewChallenges(nil, time.Minute)
	require.Error(t, err)
	_, err = NewChallenges(store, 0)
	require.Error(t, err)
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := newFakeCA(t)
	const iosApp = "TEAM123456.com.example.travel"
	appAttest, err := NewAppAttest(AppAttestConfig{AppIDs: []string{iosApp}, Roots: []*x509.Certificate{ca.root}, Environments: []Environment{Production}, Keys: NewMemoryKeyStore(), Now: fixedNow(testTime)})
	require.NoError(t, err)
	pk := newPlayKeys(t)
	play := newPlayIntegrity(t, pk, testTime, nil)
	insecure := mustInsecure(t)

	var mu sync.Mutex
	var seen []string
	p, err := NewPolicy(PolicyConfig{
		Rules: []Rule{
			{AppID: iosApp, Platform: "ios", Verifiers: []Verifier{appAttest}},
			{AppID: playPackage, Platform: "android", Verifiers: []Verifier{play}},
			{Platform: "android", Requirement: Optional, Verifiers: []Verifier{insecure}},
			{AppID: "dev.app", Verifiers: []Verifier{insecure}},
			{Platform: "web", Requirement: Off},
		},
		OnResult: func(_ context.Context, reg *Registration, res *Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				seen = append(seen, reg.Platform+":error")
			} else {
				seen = append(seen, reg.Platform+":"+string(res.Verdict))
			}
		},
	})
	require.NoError(t, err)

	key := newKey(t)
	jkt, err := thumbprint(&key.PublicKey)
	require.NoError(t, err)
	reg := func(app, platform, nonce string, att json.RawMessage) Registration {
		return Registration{AppID: app, AppVersion: "1.0", Platform: platform, Channel: "phone", Nonce: nonce, KeyThumbprint: jkt, Attestation: att}
	}
	devEvidence := func(nonce string) json.RawMessage {
		ev, err := InsecureDevelopmentEvidence(key, nonce)
		require.NoError(t, err)
		return ev
	}

	// App Attest on iOS, bound to nonce and key.
	ch, _ := Challenge("n-ios", jkt)
	keyID, obj, _ := ca.appAttest(t, fakeAttestation{appID: iosApp, aaguid: aaguidProduction, clientDataHash: ch})
	wire, _ := json.Marshal(map[string]string{"format": FormatAppleAppAttest, "key_id": b64std(keyID), "attestation": b64std(obj)})
	res, err := p.Verify(ctx, reg(iosApp, "ios", "n-ios", wire))
	require.NoError(t, err)
	require.Equal(t, VerdictVerified, res.Verdict)
	require.Equal(t, "production", res.Facts()["environment"])
	require.Equal(t, "0", res.Facts()["counter"])

	// Same attestation with another nonce: refused.
	_, err = p.Verify(ctx, reg(iosApp, "ios", "n-other", wire))
	require.ErrorIs(t, err, ErrNonceMismatch)

	// iOS rule requires attestation.
	_, err = p.Verify(ctx, reg(iosApp, "ios", "n", nil))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, CodeAttestationRequired, e.Code)
	require.Equal(t, "attestation required", e.Description())
	_, err = p.Verify(ctx, reg(iosApp, "ios", "n", json.RawMessage(" null ")))
	require.ErrorIs(t, err, ErrAttestationRequired)

	// The insecure format is not accepted for the iOS app.
	_, err = p.Verify(ctx, reg(iosApp, "ios", "n", devEvidence("n")))
	require.ErrorIs(t, err, ErrUnknownFormat)
	require.ErrorAs(t, err, &e)
	require.Equal(t, CodeInvalidAttestation, e.Code)

	// Play Integrity for the Android app.
	chA, _ := Challenge("n-and", jkt)
	tok := playToken(t, pk, playPayload(chA, testTime), jose.ES256, jose.A256KW)
	wire, _ = json.Marshal(map[string]string{"format": FormatPlayIntegrity, "token": tok})
	res, err = p.Verify(ctx, reg(playPackage, "android", "n-and", wire))
	require.NoError(t, err)
	require.Equal(t, int64(42), res.VersionCode)
	require.Equal(t, "42", res.Facts()["version_code"])

	// Other Android apps: optional, insecure development accepted.
	res, err = p.Verify(ctx, reg("com.other", "android", "n", nil))
	require.NoError(t, err)
	require.Equal(t, VerdictAbsent, res.Verdict)
	res, err = p.Verify(ctx, reg("com.other", "android", "n-dev", devEvidence("n-dev")))
	require.NoError(t, err)
	require.True(t, res.Insecure())
	// Optional but sent and wrong: refused.
	_, err = p.Verify(ctx, reg("com.other", "android", "n-x", devEvidence("n-dev")))
	require.ErrorIs(t, err, ErrSignature)
	_, err = p.Verify(ctx, reg("com.other", "android", "n", json.RawMessage(`"text"`)))
	require.ErrorIs(t, err, ErrMalformed)

	// App rule without platform.
	res, err = p.Verify(ctx, reg("dev.app", "ios", "n-d", devEvidence("n-d")))
	require.NoError(t, err)
	require.True(t, res.Insecure())

	// Web: off, whatever is sent.
	res, err = p.Verify(ctx, reg("web.app", "web", "n", json.RawMessage(`garbage`)))
	require.NoError(t, err)
	require.Equal(t, VerdictOff, res.Verdict)

	// No rule: fail closed.
	_, err = p.Verify(ctx, reg("x", "watch", "n", nil))
	require.ErrorIs(t, err, ErrNoRule)

	// No nonce or thumbprint: the caller's bug, not a refusal.
	r := reg("dev.app", "ios", "", devEvidence("x"))
	_, err = p.Verify(ctx, r)
	require.Error(t, err)
	require.False(t, IsRefusal(err))

	mu.Lock()
	require.Equal(t, []string{"ios:verified", "ios:error", "ios:error", "ios:error", "ios:error", "android:verified",
		"android:absent", "android:insecure-development", "android:error", "android:error", "ios:insecure-development",
		"web:off", "watch:error", "ios:error"}, seen)
	mu.Unlock()
}

func TestNewPolicyValidates(t *testing.T) {
	t.Parallel()
	v := mustInsecure(t)
	for name, rules := range map[string][]Rule{
		"no rules":          nil,
		"duplicate":         {{AppID: "a", Verifiers: []Verifier{v}}, {AppID: "a", Verifiers: []Verifier{v}}},
		"no verifiers":      {{AppID: "a"}},
		"optional, none":    {{AppID: "a", Requirement: Optional}},
		"nil verifier":      {{AppID: "a", Verifiers: []Verifier{nil}}},
		"two of one format": {{AppID: "a", Verifiers: []Verifier{v, v}}},
		"bad requirement":   {{AppID: "a", Requirement: 9, Verifiers: []Verifier{v}}},
	} {
		_, err := NewPolicy(PolicyConfig{Rules: rules})
		require.Error(t, err, name)
	}
	_, err := NewPolicy(PolicyConfig{Rules: []Rule{{Requirement: Off}}})
	require.NoError(t, err)
}
