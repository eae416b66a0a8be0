package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
)

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b64(b)
}

// signES256 signs header.payload with key as a raw JWS (r||s), so tests can
// build tokens with any header at all.
func signES256(t testing.TB, key *ecdsa.PrivateKey, header, claims any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

type tokenFixture struct {
	key   *ecdsa.PrivateKey
	kid   string
	keys  *auth.StaticKeys
	now   time.Time
	valid *auth.Validator
}

func newTokenFixture(t testing.TB) *tokenFixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	kid, err := auth.Thumbprint(&key.PublicKey)
	require.NoError(t, err)
	keys, err := auth.NewStaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	require.NoError(t, err)
	f := &tokenFixture{key: key, kid: kid, keys: keys, now: time.Unix(1_800_000_000, 0)}
	f.valid, err = auth.NewValidator(auth.ValidatorConfig{
		Issuer: testIssuer, Audience: testAudience, Algorithms: []string{auth.AlgES256}, Keys: keys,
		Now: func() time.Time { return f.now },
	})
	require.NoError(t, err)
	return f
}

func (f *tokenFixture) header() map[string]any {
	return map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": f.kid}
}

func (f *tokenFixture) claims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": testAudience, "exp": f.now.Add(time.Minute).Unix(),
		"iat": f.now.Unix(), "jti": "id-1", "client_id": "client-1", "scope": "a b",
		"acr": "urn:test:1fa", "amr": []string{"pwd"}, "amr_at": []int64{f.now.Unix()}, "auth_time": f.now.Unix(),
		"cnf": map[string]string{"jkt": "abc"}, "app_id": "com.example", "app_version": "1.0", "platform": "ios",
		"channel": "phone", "device_id": "d1",
	}
}

func (f *tokenFixture) mint(t testing.TB, header, claims map[string]any) string {
	return signES256(t, f.key, header, claims)
}

func TestValidatorAccepts(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	p, err := f.valid.Validate(f.mint(t, f.header(), f.claims()))
	require.NoError(t, err)
	require.Equal(t, "alice", p.Subject)
	require.Equal(t, []string{"a", "b"}, p.Scope)
	require.Equal(t, "abc", p.KeyThumbprint)
	require.Equal(t, "client-1", p.ClientID)
	require.Equal(t, "d1", p.DeviceID)
	require.Equal(t, f.now.Unix(), p.AMRTimes["pwd"].Unix())
	require.True(t, p.HasScope("b"))
	require.True(t, p.HasAMR("pwd"))
}

func TestValidatorAudience(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	cases := []struct {
		name string
		aud  any
		ok   bool
	}{
		{"string", testAudience, true},
		{"array containing", []string{"other", testAudience}, true},
		{"empty array", []string{}, false},
		{"number", 42, false},
		{"missing", nil, false},
		{"other string", "https://evil.example.com", false},
		{"object", map[string]string{"aud": testAudience}, false},
		{"array with number", []any{1, testAudience}, false},
	}
	for _, c := range cases {
		claims := f.claims()
		if c.aud == nil {
			delete(claims, "aud")
		} else {
			claims["aud"] = c.aud
		}
		_, err := f.valid.Validate(f.mint(t, f.header(), claims))
		if c.ok {
			require.NoError(t, err, c.name)
		} else {
			require.Error(t, err, c.name)
		}
	}
}

func TestValidatorAlgorithmAttacks(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	claims := b64JSON(t, f.claims())

	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := b64JSON(t, map[string]any{"alg": alg, "typ": "at+jwt", "kid": f.kid})
		for _, tok := range []string{h + "." + claims + ".", h + "." + claims + ".c2ln"} {
			_, err := f.valid.Validate(tok)
			require.Error(t, err, alg)
		}
	}

	// HS256 "signed" with the public key's bytes.
	pub, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	require.NoError(t, err)
	h := b64JSON(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": f.kid})
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(h + "." + claims))
	_, err = f.valid.Validate(h + "." + claims + "." + b64(mac.Sum(nil)))
	require.ErrorIs(t, err, auth.ErrAlgorithmNotAllowed)

	// A kid naming the ES256 key with alg RS256, signed by an RSA key.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	h = b64JSON(t, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": f.kid})
	sum := sha256.Sum256([]byte(h + "." + claims))
	sig, err := rsa.SignPKCS1v15(rand.Reader, rk, 5, sum[:]) // crypto.SHA256 == 5
	require.NoError(t, err)
	_, err = f.valid.Validate(h + "." + claims + "." + b64(sig))
	require.ErrorIs(t, err, auth.ErrAlgorithmNotAllowed)

	// EdDSA is not in this validator's allow-list even with a valid Ed25519 signature.
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	h = b64JSON(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.kid})
	_, err = f.valid.Validate(h + "." + claims + "." + b64(ed25519.Sign(edk, []byte(h+"."+claims))))
	require.ErrorIs(t, err, auth.ErrAlgorithmNotAllowed)
}

// Keys are never taken from the token: an attacker's key in jwk, jku,
// x5u or x5c is ignored, and nothing is fetched.
func TestValidatorIgnoresKeysInToken(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	var fetched atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetched.Add(1) }))
	defer ts.Close()
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	akid, err := auth.Thumbprint(&attacker.PublicKey)
	require.NoError(t, err)
	jwk, err := json.Marshal(jose.JSONWebKey{Key: &attacker.PublicKey})
	require.NoError(t, err)
	for _, kid := range []string{akid, f.kid, ""} {
		h := map[string]any{
			"alg": "ES256", "typ": "at+jwt", "jwk": json.RawMessage(jwk),
			"jku": ts.URL + "/jwks", "x5u": ts.URL + "/cert", "x5c": []string{"MIIB"},
		}
		if kid != "" {
			h["kid"] = kid
		}
		_, err := f.valid.Validate(signES256(t, attacker, h, f.claims()))
		require.Error(t, err, "kid %q", kid)
	}
	require.Zero(t, fetched.Load(), "validation must make no network call")
}

func TestValidatorClaims(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	mod := func(k string, v any) map[string]any {
		c := f.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		header map[string]any
		claims map[string]any
		err    error
	}{
		{"expired", nil, mod("exp", f.now.Unix()), auth.ErrTokenExpired},
		{"expired long ago", nil, mod("exp", f.now.Add(-time.Hour).Unix()), auth.ErrTokenExpired},
		{"not before", nil, mod("nbf", f.now.Add(time.Minute).Unix()), auth.ErrTokenNotYetValid},
		{"issued in the future", nil, mod("iat", f.now.Add(time.Minute).Unix()), auth.ErrTokenNotYetValid},
		{"wrong issuer", nil, mod("iss", "https://evil.example.com"), auth.ErrWrongIssuer},
		{"no jti", nil, mod("jti", nil), auth.ErrMissingClaim},
		{"no exp", nil, mod("exp", nil), auth.ErrMissingClaim},
		{"no client_id", nil, mod("client_id", nil), auth.ErrMissingClaim},
		{"exp as string", nil, mod("exp", "9999999999"), auth.ErrMalformedToken},
		{"wrong typ", map[string]any{"alg": "ES256", "typ": "JWT", "kid": f.kid}, nil, auth.ErrWrongTokenType},
		{"no typ", map[string]any{"alg": "ES256", "kid": f.kid}, nil, auth.ErrWrongTokenType},
		{"unknown kid", map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "nope"}, nil, auth.ErrUnknownKey},
		{"no kid", map[string]any{"alg": "ES256", "typ": "at+jwt"}, nil, auth.ErrUnknownKey},
	}
	for _, c := range cases {
		h, cl := c.header, c.claims
		if h == nil {
			h = f.header()
		}
		if cl == nil {
			cl = f.claims()
		}
		_, err := f.valid.Validate(f.mint(t, h, cl))
		require.ErrorIs(t, err, c.err, c.name)
	}
	// application/at+jwt is the same type.
	_, err := f.valid.Validate(f.mint(t, map[string]any{"alg": "ES256", "typ": "application/at+jwt", "kid": f.kid}, f.claims()))
	require.NoError(t, err)
}

// A forged signature is reported as such, never as a lesser failure, and
// yields no claims.
func TestValidatorSignatureFirst(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	c := f.claims()
	c["exp"] = f.now.Add(-time.Hour).Unix()
	c["iss"] = "https://evil.example.com"
	tok := f.mint(t, f.header(), c)
	tampered := tok[:len(tok)-4] + "AAAA"
	p, err := f.valid.Validate(tampered)
	require.ErrorIs(t, err, auth.ErrBadSignature)
	require.Nil(t, p)

	// Payload swapped under a valid signature.
	parts := strings.Split(f.mint(t, f.header(), f.claims()), ".")
	other := f.claims()
	other["sub"] = "mallory"
	parts[1] = b64JSON(t, other)
	_, err = f.valid.Validate(strings.Join(parts, "."))
	require.ErrorIs(t, err, auth.ErrBadSignature)
}

// Not parallel: it measures allocation.
func TestValidatorSizeLimits(t *testing.T) {
	f := newTokenFixture(t)
	dots := strings.Repeat(".", 1<<20)
	bigHeader := b64(make([]byte, 10<<20)) + "." + b64JSON(t, f.claims()) + ".c2ln"
	for name, tok := range map[string]string{"1 MiB of dots": dots, "10 MiB header": bigHeader} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := f.valid.Validate(tok)
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, auth.ErrTokenTooLarge, name)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "%s: allocation must not grow with the input", name)
	}
	allocs := testing.AllocsPerRun(10, func() { _, _ = f.valid.Validate(dots) })
	require.LessOrEqual(t, allocs, 1.0)

	// A configurable maximum.
	small, err := auth.NewValidator(auth.ValidatorConfig{Issuer: testIssuer, Audience: testAudience,
		Algorithms: []string{auth.AlgES256}, Keys: f.keys, MaxTokenSize: 100})
	require.NoError(t, err)
	_, err = small.Validate(f.mint(t, f.header(), f.claims()))
	require.ErrorIs(t, err, auth.ErrTokenTooLarge)
}

func TestValidatorConfigRequired(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t)
	good := auth.ValidatorConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{auth.AlgES256}, Keys: f.keys}
	for name, mut := range map[string]func(*auth.ValidatorConfig){
		"no issuer":     func(c *auth.ValidatorConfig) { c.Issuer = "" },
		"no audience":   func(c *auth.ValidatorConfig) { c.Audience = "" },
		"no algorithms": func(c *auth.ValidatorConfig) { c.Algorithms = nil },
		"RS256":         func(c *auth.ValidatorConfig) { c.Algorithms = []string{"RS256"} },
		"none":          func(c *auth.ValidatorConfig) { c.Algorithms = []string{"none"} },
		"no keys":       func(c *auth.ValidatorConfig) { c.Keys = nil },
		"negative skew": func(c *auth.ValidatorConfig) { c.Leeway = -time.Second },
	} {
		c := good
		mut(&c)
		_, err := auth.NewValidator(c)
		require.ErrorIs(t, err, auth.ErrInvalidConfiguration, name)
	}
}

func TestStaticKeysRefusals(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for name, k := range map[string]jose.JSONWebKey{
		"private key": {Key: ec, KeyID: "a"},
		"P-384":       {Key: &p384.PublicKey, KeyID: "a"},
		"RSA":         {Key: &rk.PublicKey, KeyID: "a"},
		"no kid":      {Key: &ec.PublicKey},
		"alg lies":    {Key: &ec.PublicKey, KeyID: "a", Algorithm: "RS256"},
	} {
		_, err := auth.NewStaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
		require.Error(t, err, name)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	k2, err := auth.GenerateSigningKey(auth.AlgEdDSA)
	require.NoError(t, err)
	k3, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	ks, err := auth.NewKeySet(k1, 1)
	require.NoError(t, err)
	id1 := ks.CurrentKeyID()
	require.NoError(t, ks.Rotate(k2))
	require.Len(t, ks.JWKS().Keys, 2)
	_, ok := ks.VerificationKey(id1)
	require.True(t, ok, "the previous key still verifies")
	require.NoError(t, ks.Rotate(k3))
	_, ok = ks.VerificationKey(id1)
	require.False(t, ok, "the oldest key is dropped")
	require.Len(t, ks.JWKS().Keys, 2)
	require.Error(t, ks.Rotate(k3), "rotating to the current key")
	_, err = auth.GenerateSigningKey("RS256")
	require.Error(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, err = auth.NewKeySet(rk, 1)
	require.ErrorIs(t, err, auth.ErrUnsupportedKey)
}
