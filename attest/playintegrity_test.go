package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv"
)

const playPackage = "com.example.travel"

// playKeys are the operator's Play Console keys in the tests.
type playKeys struct {
	dec []byte
	sig *ecdsa.PrivateKey
}

func newPlayKeys(t testing.TB) playKeys {
	t.Helper()
	dec := make([]byte, 32)
	_, err := rand.Read(dec)
	require.NoError(t, err)
	return playKeys{dec: dec, sig: newKey(t)}
}

var playCertDigest = sha([]byte("signing certificate"))

// playPayload is a verdict as Google documents it.
func playPayload(binding []byte, at time.Time) map[string]any {
	return map[string]any{
		"requestDetails": map[string]any{
			"requestPackageName": playPackage,
			"timestampMillis":    strconv.FormatInt(at.UnixMilli(), 10),
			"requestHash":        base64.RawURLEncoding.EncodeToString(binding),
		},
		"appIntegrity": map[string]any{
			"appRecognitionVerdict":   "PLAY_RECOGNIZED",
			"packageName":             playPackage,
			"certificateSha256Digest": []string{base64.RawURLEncoding.EncodeToString(playCertDigest)},
			"versionCode":             "42",
		},
		"deviceIntegrity": map[string]any{"deviceRecognitionVerdict": []string{"MEETS_BASIC_INTEGRITY", "MEETS_DEVICE_INTEGRITY"}},
		"accountDetails":  map[string]any{"appLicensingVerdict": "LICENSED"},
	}
}

// playToken builds an integrity token the way Google does: an ES256 JWS
// inside an A256KW/A256GCM JWE.
func playToken(t testing.TB, k playKeys, payload any, alg jose.SignatureAlgorithm, kw jose.KeyAlgorithm) string {
	t.Helper()
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	var sigKey any = k.sig
	if alg == jose.HS256 {
		sigKey = k.dec
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sigKey}, nil)
	require.NoError(t, err)
	jws, err := signer.Sign(body)
	require.NoError(t, err)
	inner, err := jws.CompactSerialize()
	require.NoError(t, err)
	var encKey any = k.dec
	if kw == jose.A128KW {
		encKey = k.dec[:16]
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: kw, Key: encKey}, nil)
	require.NoError(t, err)
	jwe, err := enc.Encrypt([]byte(inner))
	require.NoError(t, err)
	s, err := jwe.CompactSerialize()
	require.NoError(t, err)
	return s
}

func newPlayIntegrity(t testing.TB, k playKeys, now time.Time, mut func(*PlayIntegrityConfig)) *PlayIntegrity {
	t.Helper()
	cfg := PlayIntegrityConfig{
		PackageName: playPackage, DecryptionKey: k.dec, VerificationKey: &k.sig.PublicKey,
		CertificateDigests: [][]byte{playCertDigest}, Replay: kv.NewMemory(kv.MemoryConfig{Now: fixedNow(now)}),
		Now: fixedNow(now),
	}
	if mut != nil {
		mut(&cfg)
	}
	p, err := NewPlayIntegrity(cfg)
	require.NoError(t, err)
	return p
}

func TestPlayIntegrity(t *testing.T) {
	t.Parallel()
	k := newPlayKeys(t)
	binding := sha([]byte("binding"))
	set := func(m map[string]any, path []string, v any) map[string]any {
		inner := m[path[0]].(map[string]any)
		if v == nil {
			delete(inner, path[1])
		} else {
			inner[path[1]] = v
		}
		return m
	}
	cases := []struct {
		name    string
		payload func() map[string]any
		token   func(map[string]any) string
		cfg     func(*PlayIntegrityConfig)
		binding []byte
		err     error
	}{
		{name: "good"},
		{name: "classic nonce, padded standard base64", payload: func() map[string]any {
			m := set(playPayload(binding, testTime), []string{"requestDetails", "requestHash"}, nil)
			return set(m, []string{"requestDetails", "nonce"}, base64.URLEncoding.EncodeToString(binding))
		}},
		{name: "numeric timestamp", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"requestDetails", "timestampMillis"}, testTime.UnixMilli())
		}},
		{name: "wrong request package", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"requestDetails", "requestPackageName"}, "com.evil")
		}, err: ErrPackage},
		{name: "wrong app package", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"appIntegrity", "packageName"}, "com.evil")
		}, err: ErrPackage},
		{name: "unrecognized app", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"appIntegrity", "appRecognitionVerdict"}, "UNRECOGNIZED_VERSION")
		}, err: ErrAppNotRecognized},
		{name: "unevaluated app", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"appIntegrity", "appRecognitionVerdict"}, "UNEVALUATED")
		}, err: ErrAppNotRecognized},
		{name: "stale", payload: func() map[string]any { return playPayload(binding, testTime.Add(-6*time.Minute)) }, err: ErrStale},
		{name: "from the future", payload: func() map[string]any { return playPayload(binding, testTime.Add(2*time.Minute)) }, err: ErrStale},
		{name: "longer max age", payload: func() map[string]any { return playPayload(binding, testTime.Add(-6*time.Minute)) }, cfg: func(c *PlayIntegrityConfig) { c.MaxAge = 10 * time.Minute }},
		{name: "no timestamp", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"requestDetails", "timestampMillis"}, nil)
		}, err: ErrMalformed},
		{name: "mismatched request hash", binding: sha([]byte("other")), err: ErrChallengeMismatch},
		{name: "no request hash or nonce", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"requestDetails", "requestHash"}, nil)
		}, err: ErrChallengeMismatch},
		{name: "unknown certificate", cfg: func(c *PlayIntegrityConfig) { c.CertificateDigests = [][]byte{sha([]byte("x"))} }, err: ErrPackage},
		{name: "unknown certificate insecurely allowed", cfg: func(c *PlayIntegrityConfig) {
			c.CertificateDigests = nil
			c.InsecureSkipCertificateDigest = true
		}},
		{name: "no version code", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"appIntegrity", "versionCode"}, nil)
		}, err: ErrMalformed},
		{name: "numeric version code", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"appIntegrity", "versionCode"}, 42)
		}},
		{name: "basic integrity only", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"deviceIntegrity", "deviceRecognitionVerdict"}, []string{"MEETS_BASIC_INTEGRITY"})
		}, err: ErrDeviceIntegrity},
		{name: "no device verdict", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"deviceIntegrity", "deviceRecognitionVerdict"}, []string{})
		}, err: ErrDeviceIntegrity},
		{name: "basic integrity allowed", payload: func() map[string]any {
			return set(playPayload(binding, testTime), []string{"deviceIntegrity", "deviceRecognitionVerdict"}, []string{"MEETS_BASIC_INTEGRITY"})
		}, cfg: func(c *PlayIntegrityConfig) { c.MinDeviceIntegrity = DeviceIntegrityBasic }},
		{name: "strong integrity required", cfg: func(c *PlayIntegrityConfig) { c.MinDeviceIntegrity = DeviceIntegrityStrong }, err: ErrDeviceIntegrity},
		{name: "signed by another key", token: func(m map[string]any) string {
			other := k
			other.sig = newKey(t)
			return playToken(t, other, m, jose.ES256, jose.A256KW)
		}, err: ErrSignature},
		{name: "encrypted with another key", token: func(m map[string]any) string {
			other := newPlayKeys(t)
			other.sig = k.sig
			return playToken(t, other, m, jose.ES256, jose.A256KW)
		}, err: ErrSignature},
		{name: "HS256 with the decryption key", token: func(m map[string]any) string {
			return playToken(t, k, m, jose.HS256, jose.A256KW)
		}, err: ErrMalformed},
		{name: "A128KW", token: func(m map[string]any) string {
			return playToken(t, k, m, jose.ES256, jose.A128KW)
		}, err: ErrMalformed},
		{name: "not a token", token: func(map[string]any) string { return "a.b.c.d.e" }, err: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			payload := playPayload(binding, testTime)
			if c.payload != nil {
				payload = c.payload()
			}
			var token string
			if c.token != nil {
				token = c.token(payload)
			} else {
				token = playToken(t, k, payload, jose.ES256, jose.A256KW)
			}
			b := binding
			if c.binding != nil {
				b = c.binding
			}
			p := newPlayIntegrity(t, k, testTime, c.cfg)
			res, err := p.VerifyToken(context.Background(), token, b)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				require.True(t, IsRefusal(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, int64(42), res.VersionCode)
			require.Equal(t, playPackage, res.AppID)
			require.Equal(t, "PLAY_RECOGNIZED", res.Claims["app_recognition"])
			// The same nonce or request hash is single use.
			_, err = p.VerifyToken(context.Background(), token, b)
			require.ErrorIs(t, err, ErrReplay)
		})
	}
}

func TestPlayIntegrityRegistrationEvidence(t *testing.T) {
	t.Parallel()
	k := newPlayKeys(t)
	ch, err := Challenge("nonce", "jkt")
	require.NoError(t, err)
	p := newPlayIntegrity(t, k, testTime, nil)
	wire, err := json.Marshal(map[string]string{"format": FormatPlayIntegrity, "token": playToken(t, k, playPayload(ch, testTime), jose.ES256, jose.A256KW)})
	require.NoError(t, err)
	_, err = p.Verify(context.Background(), &Evidence{Attestation: wire, Challenge: ch, AppID: "com.other"})
	require.ErrorIs(t, err, ErrPackage)
	res, err := p.Verify(context.Background(), &Evidence{Attestation: wire, Challenge: ch, AppID: playPackage})
	require.ErrorIs(t, err, ErrReplay, "the first call consumed the request hash")
	require.Nil(t, res)
}

func TestNewPlayIntegrityRequiresSettings(t *testing.T) {
	t.Parallel()
	k := newPlayKeys(t)
	good := PlayIntegrityConfig{PackageName: playPackage, DecryptionKey: k.dec, VerificationKey: &k.sig.PublicKey, CertificateDigests: [][]byte{playCertDigest}, Replay: kv.NewMemory(kv.MemoryConfig{})}
	_, err := NewPlayIntegrity(good)
	require.NoError(t, err)
	for name, mutate := range map[string]func(*PlayIntegrityConfig){
		"no package":       func(c *PlayIntegrityConfig) { c.PackageName = "" },
		"short key":        func(c *PlayIntegrityConfig) { c.DecryptionKey = k.dec[:16] },
		"no verification":  func(c *PlayIntegrityConfig) { c.VerificationKey = nil },
		"no digests":       func(c *PlayIntegrityConfig) { c.CertificateDigests = nil },
		"bad digest":       func(c *PlayIntegrityConfig) { c.CertificateDigests = [][]byte{{1}} },
		"no replay store":  func(c *PlayIntegrityConfig) { c.Replay = nil },
		"negative max age": func(c *PlayIntegrityConfig) { c.MaxAge = -1 },
		"bad level":        func(c *PlayIntegrityConfig) { c.MinDeviceIntegrity = 7 },
	} {
		c := good
		mutate(&c)
		_, err := NewPlayIntegrity(c)
		require.Error(t, err, name)
	}
}
