package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	appleSampleAppID = "0352187391.com.apple.example_app_attest"
	appleSampleKeyID = "bSrEhF8TIzIvWSPwvZ0i2+UOBre4ASH84rK15m6emNY="
	nodeAppID        = "V8H6LQ9448.io.uebelacker.AppAttestExample"
	veehaitchAppID   = "6MURL8TA57.de.vincent-haupert.apple-appattest-poc"
)

func newAppAttest(t testing.TB, appIDs []string, envs []Environment, at time.Time, roots ...*x509.Certificate) *AppAttest {
	t.Helper()
	if len(roots) == 0 {
		roots = []*x509.Certificate{AppleAppAttestationRoot()}
	}
	a, err := NewAppAttest(AppAttestConfig{
		AppIDs: appIDs, Roots: roots, Environments: envs, Keys: NewMemoryKeyStore(), Now: fixedNow(at),
	})
	require.NoError(t, err)
	return a
}

func parsePublicKeyPEM(t testing.TB, s string) *ecdsa.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	require.NotNil(t, b)
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	require.NoError(t, err)
	return k.(*ecdsa.PublicKey)
}

// TestAppAttestManifest runs every attestation case of the appattest
// manifest, positive and negative, at the manifest's times.
func TestAppAttestManifest(t *testing.T) {
	t.Parallel()
	sample := readTestdata(t, "appattest/apple-doc-sample.attestation.cbor")
	sampleB64 := string(readTestdata(t, "appattest/apple-doc-sample.attestation.b64"))
	var node struct{ Attestation, Challenge, KeyID string }
	require.NoError(t, json.Unmarshal(readTestdata(t, "appattest/node-app-attest.attestation-development.json"), &node))
	v142 := yamlDoc(t, "appattest/veehaitch-ios-14.2.yaml", "attestation")
	v144 := yamlDoc(t, "appattest/veehaitch-ios-14.4.yaml", "attestation")
	usertrust, err := ParseCertificatesPEM(readTestdata(t, "x509/signal-apns-certificates.pem"))
	require.NoError(t, err)

	raw := []byte("test_server_challenge")
	prod := []Environment{Production}
	dev := []Environment{Development}
	both := []Environment{Production, Development}
	cases := []struct {
		name   string
		appID  string
		envs   []Environment
		at     string
		keyID  string
		obj    []byte
		cdh    []byte
		roots  []*x509.Certificate
		err    error
		env    Environment
		pubPEM string
	}{
		{name: "apple sample raw challenge", appID: appleSampleAppID, envs: prod, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, env: Production},
		{name: "apple sample base64 file", appID: appleSampleAppID, envs: prod, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: mustB64(t, sampleB64), cdh: raw, env: Production},
		{name: "apple sample at Signal's time", appID: appleSampleAppID, envs: both, at: "2024-04-19T00:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, env: Production},
		{name: "apple sample expired", appID: appleSampleAppID, envs: prod, at: "2025-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, err: ErrCertificateExpired},
		{name: "apple sample expired a day after", appID: appleSampleAppID, envs: prod, at: "2024-04-21T00:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, err: ErrCertificateExpired},
		{name: "apple sample not yet valid", appID: appleSampleAppID, envs: prod, at: "2024-04-17T00:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, err: ErrCertificateExpired},
		{name: "apple sample at development verifier", appID: appleSampleAppID, envs: dev, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, err: ErrEnvironment},
		{name: "apple sample hashed challenge", appID: appleSampleAppID, envs: prod, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: sha(raw), err: ErrNonceMismatch},
		{name: "apple sample other app id", appID: "0352187391.com.apple.other", envs: prod, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, err: ErrAppIDMismatch},
		{name: "apple sample wrong key id", appID: appleSampleAppID, envs: prod, at: "2024-04-18T12:00:00Z", keyID: node.KeyID, obj: sample, cdh: raw, err: ErrKeyIDMismatch},
		{name: "apple sample untrusted root", appID: appleSampleAppID, envs: prod, at: "2024-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, roots: usertrust, err: ErrUnknownRoot},
		// The most serious failure wins: not chaining to a trusted root is
		// reported as such, not as merely expired.
		{name: "apple sample untrusted root and expired", appID: appleSampleAppID, envs: prod, at: "2025-04-18T12:00:00Z", keyID: appleSampleKeyID, obj: sample, cdh: raw, roots: usertrust, err: ErrUnknownRoot},
		{name: "node development", appID: nodeAppID, envs: dev, at: "2024-02-04T20:27:06Z", keyID: node.KeyID, obj: mustB64(t, node.Attestation), cdh: sha(mustB64(t, node.Challenge)), env: Development},
		{name: "node development at helper's time", appID: nodeAppID, envs: both, at: "2024-06-01T00:00:00Z", keyID: node.KeyID, obj: mustB64(t, node.Attestation), cdh: sha(mustB64(t, node.Challenge)), env: Development},
		{name: "node production only", appID: nodeAppID, envs: prod, at: "2024-02-04T20:27:06Z", keyID: node.KeyID, obj: mustB64(t, node.Attestation), cdh: sha(mustB64(t, node.Challenge)), err: ErrEnvironment},
		{name: "node raw challenge", appID: nodeAppID, envs: dev, at: "2024-02-04T20:27:06Z", keyID: node.KeyID, obj: mustB64(t, node.Attestation), cdh: mustB64(t, node.Challenge), err: ErrNonceMismatch},
		{name: "node expired", appID: nodeAppID, envs: dev, at: "2025-01-09T00:00:00Z", keyID: node.KeyID, obj: mustB64(t, node.Attestation), cdh: sha(mustB64(t, node.Challenge)), err: ErrCertificateExpired},
		{name: "ios 14.2", appID: veehaitchAppID, envs: dev, at: v142["timestamp"], keyID: v142["keyIdBase64"], obj: mustB64(t, v142["attestationBase64"]), cdh: mustB64(t, v142["clientDataHashSha256Base64"]), env: Development, pubPEM: v142["publicKey"]},
		{name: "ios 14.4", appID: veehaitchAppID, envs: dev, at: v144["timestamp"], keyID: v144["keyIdBase64"], obj: mustB64(t, v144["attestationBase64"]), cdh: sha(mustB64(t, v144["clientDataBase64"])), env: Development, pubPEM: v144["publicKey"]},
		{name: "ios 14.4 production only", appID: veehaitchAppID, envs: prod, at: v144["timestamp"], keyID: v144["keyIdBase64"], obj: mustB64(t, v144["attestationBase64"]), cdh: sha(mustB64(t, v144["clientDataBase64"])), err: ErrEnvironment},
		{name: "ios 14.4 wrong client data", appID: veehaitchAppID, envs: dev, at: v144["timestamp"], keyID: v144["keyIdBase64"], obj: mustB64(t, v144["attestationBase64"]), cdh: sha([]byte("wurzel")), err: ErrNonceMismatch},
		{name: "ios 14.4 expired", appID: veehaitchAppID, envs: dev, at: "2021-01-26T00:00:00Z", keyID: v144["keyIdBase64"], obj: mustB64(t, v144["attestationBase64"]), cdh: sha(mustB64(t, v144["clientDataBase64"])), err: ErrCertificateExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newAppAttest(t, []string{c.appID}, c.envs, mustTime(t, c.at), c.roots...)
			res, err := a.VerifyAttestation(mustB64(t, c.keyID), c.obj, c.cdh)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				require.True(t, IsRefusal(err))
				require.Nil(t, res)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.env, res.Environment)
			require.Equal(t, uint32(0), res.Counter)
			require.Equal(t, c.appID, res.AppID)
			require.Equal(t, VerdictVerified, res.Verdict)
			require.NotEmpty(t, res.Receipt)
			require.Equal(t, mustB64(t, c.keyID), res.KeyID)
			if c.pubPEM != "" {
				require.True(t, parsePublicKeyPEM(t, c.pubPEM).Equal(res.PublicKey))
			}
		})
	}
}

func TestAppAttestSampleRPIDHash(t *testing.T) {
	t.Parallel()
	ao, err := parseAttestationObject(readTestdata(t, "appattest/apple-doc-sample.attestation.cbor"))
	require.NoError(t, err)
	ad, err := parseAuthenticatorData(ao.AuthData)
	require.NoError(t, err)
	require.Equal(t, mustB64(t, "FVhAM8lQuf6dUUziohGjJtcaprEBSrTG+i+9qdmqGKY="), ad.rpIDHash)
	require.Equal(t, sha([]byte(appleSampleAppID)), ad.rpIDHash)
}

// TestAppAttestSynthetic covers checks that need crafted objects.
func TestAppAttestSynthetic(t *testing.T) {
	t.Parallel()
	ca := newFakeCA(t)
	const app = "TEAM123456.com.example.app"
	cdh := sha([]byte("client data"))
	cases := []struct {
		name string
		f    fakeAttestation
		envs []Environment
		err  error
	}{
		{name: "production", f: fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh}, envs: []Environment{Production}},
		{name: "development", f: fakeAttestation{appID: app, aaguid: aaguidDevelopment, clientDataHash: cdh}, envs: []Environment{Development}},
		{name: "development at production verifier", f: fakeAttestation{appID: app, aaguid: aaguidDevelopment, clientDataHash: cdh}, envs: []Environment{Production}, err: ErrEnvironment},
		{name: "aaguid without zero padding", f: fakeAttestation{appID: app, aaguid: []byte("appattest1234567"), clientDataHash: cdh}, envs: []Environment{Production, Development}, err: ErrEnvironment},
		{name: "aaguid padded with spaces", f: fakeAttestation{appID: app, aaguid: []byte("appattest       "), clientDataHash: cdh}, envs: []Environment{Production}, err: ErrEnvironment},
		{name: "counter not zero", f: fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh, counter: 1}, envs: []Environment{Production}, err: ErrCounter},
		{name: "credential id not key id", f: fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh, credID: make([]byte, 32)}, envs: []Environment{Production}, err: ErrKeyIDMismatch},
		{name: "other app", f: fakeAttestation{appID: "TEAM123456.com.example.other", aaguid: aaguidProduction, clientDataHash: cdh}, envs: []Environment{Production}, err: ErrAppIDMismatch},
		{name: "expired leaf", f: fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh, notAfter: testTime.Add(-time.Hour)}, envs: []Environment{Production}, err: ErrCertificateExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			keyID, obj, _ := ca.appAttest(t, c.f)
			a := newAppAttest(t, []string{app}, c.envs, testTime, ca.root)
			res, err := a.VerifyAttestation(keyID, obj, cdh)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []byte("fake receipt"), res.Receipt)
		})
	}
	t.Run("aaguid appattest without its seven zero bytes", func(t *testing.T) {
		t.Parallel()
		// The 9-byte "appattest" alone shifts every later field: the
		// parser reads the credential id length's bytes as aaguid.
		keyID, obj, _ := ca.appAttest(t, fakeAttestation{appID: app, aaguid: []byte("appattest"), clientDataHash: cdh})
		a := newAppAttest(t, []string{app}, []Environment{Production, Development}, testTime, ca.root)
		res, err := a.VerifyAttestation(keyID, obj, cdh)
		require.Nil(t, res)
		require.True(t, IsRefusal(err), "%v", err)
		require.True(t, errors.Is(err, ErrEnvironment) || errors.Is(err, ErrMalformed), "%v", err)
	})
	t.Run("chain to the real Apple root fails", func(t *testing.T) {
		t.Parallel()
		keyID, obj, _ := ca.appAttest(t, fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh})
		a := newAppAttest(t, []string{app}, []Environment{Production}, testTime)
		_, err := a.VerifyAttestation(keyID, obj, cdh)
		require.ErrorIs(t, err, ErrUnknownRoot)
		// Also when the forged leaf has expired: never "merely expired".
		keyID, obj, _ = ca.appAttest(t, fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: cdh, notAfter: testTime.Add(-time.Hour)})
		_, err = a.VerifyAttestation(keyID, obj, cdh)
		require.ErrorIs(t, err, ErrUnknownRoot)
	})
}

// TestAppAttestAssertionManifest runs the manifest's assertion cases.
func TestAppAttestAssertionManifest(t *testing.T) {
	t.Parallel()
	var node struct {
		AssertionBase64, PublicKeyPem, ClientData, TeamIdentifier, BundleIdentifier string
		ExpectedCounter                                                             uint32
	}
	require.NoError(t, json.Unmarshal(readTestdata(t, "appattest/node-app-attest.assertion.json"), &node))
	type assertionCase struct {
		name, assertion, pub, appID, clientData string
		stored, counter                         uint32
		err                                     error
	}
	cases := []assertionCase{
		{name: "node", assertion: node.AssertionBase64, pub: node.PublicKeyPem, appID: node.TeamIdentifier + "." + node.BundleIdentifier, clientData: node.ClientData, counter: 1},
		{name: "node other client data", assertion: node.AssertionBase64, pub: node.PublicKeyPem, appID: nodeAppID, clientData: "{}", err: ErrSignature},
		{name: "node replay", assertion: node.AssertionBase64, pub: node.PublicKeyPem, appID: nodeAppID, clientData: node.ClientData, stored: 1, err: ErrCounter},
		{name: "node other app", assertion: node.AssertionBase64, pub: node.PublicKeyPem, appID: veehaitchAppID, clientData: node.ClientData, err: ErrAppIDMismatch},
	}
	for _, f := range []string{"appattest/veehaitch-ios-14.2.yaml", "appattest/veehaitch-ios-14.4.yaml"} {
		d := yamlDoc(t, f, "assertion")
		cd := string(mustB64(t, d["clientDataBase64"]))
		require.Equal(t, "wurzelpfropf", cd)
		cases = append(cases,
			assertionCase{name: f, assertion: d["assertionBase64"], pub: d["publicKey"], appID: veehaitchAppID, clientData: cd, counter: 1},
			assertionCase{name: f + " replayed", assertion: d["assertionBase64"], pub: d["publicKey"], appID: veehaitchAppID, clientData: cd, stored: 1, err: ErrCounter},
			assertionCase{name: f + " challenge only", assertion: d["assertionBase64"], pub: d["publicKey"], appID: veehaitchAppID, clientData: "wurzel", err: ErrSignature},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n, err := VerifyAppAttestAssertion(mustB64(t, c.assertion), parsePublicKeyPEM(t, c.pub), c.appID, sha([]byte(c.clientData)), c.stored)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.counter, n)
		})
	}
}

// TestAppAttestRegistrationAndAssertions walks the whole path: attest at
// registration (stored key), then assertions that advance the counter.
func TestAppAttestRegistrationAndAssertions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := newFakeCA(t)
	const app = "TEAM123456.com.example.app"
	ch, err := Challenge("server-nonce", "client-jkt")
	require.NoError(t, err)
	keyID, obj, key := ca.appAttest(t, fakeAttestation{appID: app, aaguid: aaguidProduction, clientDataHash: ch})
	keys := NewMemoryKeyStore()
	a, err := NewAppAttest(AppAttestConfig{AppIDs: []string{app}, Roots: []*x509.Certificate{ca.root}, Environments: []Environment{Production}, Keys: keys, Now: fixedNow(testTime)})
	require.NoError(t, err)

	wire, err := json.Marshal(map[string]string{"format": FormatAppleAppAttest, "key_id": b64std(keyID), "attestation": b64std(obj)})
	require.NoError(t, err)
	ev := &Evidence{Attestation: wire, Challenge: ch, KeyThumbprint: "client-jkt", AppID: app}
	res, err := a.Verify(ctx, ev)
	require.NoError(t, err)
	require.Equal(t, keyID, res.KeyID)
	rec, err := keys.Key(ctx, keyID)
	require.NoError(t, err)
	require.Equal(t, "client-jkt", rec.KeyThumbprint)
	require.Equal(t, []byte("fake receipt"), rec.Receipt)

	// The same attestation again: the key exists.
	_, err = a.Verify(ctx, ev)
	require.ErrorIs(t, err, ErrKeyExists)
	// Declared app id differs from the attested one.
	_, err = a.Verify(ctx, &Evidence{Attestation: wire, Challenge: ch, AppID: "TEAM123456.com.example.other"})
	require.ErrorIs(t, err, ErrAppIDMismatch)
	// Bound to another challenge.
	other, _ := Challenge("server-nonce", "other-jkt")
	_, err = a.Verify(ctx, &Evidence{Attestation: wire, Challenge: other})
	require.ErrorIs(t, err, ErrNonceMismatch)

	cd := sha([]byte(`{"challenge":"abc"}`))
	res, err = a.VerifyAssertion(ctx, keyID, fakeAssertion(t, key, app, 1, cd), cd)
	require.NoError(t, err)
	require.Equal(t, uint32(1), res.Counter)
	// Replay of counter 1.
	_, err = a.VerifyAssertion(ctx, keyID, fakeAssertion(t, key, app, 1, cd), cd)
	require.ErrorIs(t, err, ErrCounter)
	// Jumps forward are fine; the counter is stored.
	_, err = a.VerifyAssertion(ctx, keyID, fakeAssertion(t, key, app, 7, cd), cd)
	require.NoError(t, err)
	rec, err = keys.Key(ctx, keyID)
	require.NoError(t, err)
	require.Equal(t, uint32(7), rec.Counter)
	// Unknown key.
	_, err = a.VerifyAssertion(ctx, make([]byte, 32), fakeAssertion(t, key, app, 9, cd), cd)
	require.ErrorIs(t, err, ErrUnknownKey)

	// Concurrent assertions with the same counter: exactly one wins.
	as := fakeAssertion(t, key, app, 8, cd)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := a.VerifyAssertion(ctx, keyID, as, cd); err == nil {
				wins.Add(1)
			} else {
				require.ErrorIs(t, err, ErrCounter)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

func TestNewAppAttestRequiresSettings(t *testing.T) {
	t.Parallel()
	good := AppAttestConfig{AppIDs: []string{appleSampleAppID}, Roots: []*x509.Certificate{AppleAppAttestationRoot()}, Environments: []Environment{Production}, Keys: NewMemoryKeyStore()}
	_, err := NewAppAttest(good)
	require.NoError(t, err)
	for name, mutate := range map[string]func(*AppAttestConfig){
		"no app ids":      func(c *AppAttestConfig) { c.AppIDs = nil },
		"bad app id":      func(c *AppAttestConfig) { c.AppIDs = []string{"nodot"} },
		"no roots":        func(c *AppAttestConfig) { c.Roots = nil },
		"no environments": func(c *AppAttestConfig) { c.Environments = nil },
		"bad environment": func(c *AppAttestConfig) { c.Environments = []Environment{"staging"} },
		"no key store":    func(c *AppAttestConfig) { c.Keys = nil },
	} {
		c := good
		mutate(&c)
		_, err := NewAppAttest(c)
		require.Error(t, err, name)
	}
}

// TestAppAttestClientDataVariants: the verifier takes the client data
// itself as well as its hash (iOS 14.4 sample: the app attested over
// SHA-256 of its client data), and the hashed variant refuses the raw
// challenge that Apple's sample appends as is.
func TestAppAttestClientDataVariants(t *testing.T) {
	t.Parallel()
	v144 := yamlDoc(t, "appattest/veehaitch-ios-14.4.yaml", "attestation")
	a := newAppAttest(t, []string{veehaitchAppID}, []Environment{Development}, mustTime(t, v144["timestamp"]))
	clientData := mustB64(t, v144["clientDataBase64"])
	res, err := a.VerifyAttestationClientData(mustB64(t, v144["keyIdBase64"]), mustB64(t, v144["attestationBase64"]), clientData)
	require.NoError(t, err)
	require.Equal(t, Development, res.Environment)
	_, err = a.VerifyAttestationClientData(mustB64(t, v144["keyIdBase64"]), mustB64(t, v144["attestationBase64"]), []byte("wurzel"))
	require.ErrorIs(t, err, ErrNonceMismatch)
	require.Equal(t, sha(clientData), ClientDataHash(clientData))
}
