package pinning

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// publishable returns a set that can be signed: version, expiry, backups.
func publishable(t testing.TB, version uint64, pins ...Pin) *Set {
	t.Helper()
	if len(pins) == 0 {
		pins = []Pin{randomPin(t), randomPin(t)}
	}
	s, err := NewSet(SetConfig{
		Version: version, Expires: testNow.Add(30 * 24 * time.Hour), AfterExpiry: KeepEnforcing,
		Rules: []Rule{{Pattern: "api.example.com", Pins: pins}},
	})
	require.NoError(t, err)
	return s
}

func ed25519Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

func mustSign(t testing.TB, set *Set, key crypto.Signer) *Document {
	t.Helper()
	d, err := SignDocument(set, key, testNow)
	require.NoError(t, err)
	return d
}

// signRaw signs payload as a compact JWS with any header, to build
// documents SignDocument refuses to make.
func signRaw(t testing.TB, alg jose.SignatureAlgorithm, key any, typ string, payload string) []byte {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	jws, err := s.Sign([]byte(payload))
	require.NoError(t, err)
	c, err := jws.CompactSerialize()
	require.NoError(t, err)
	return []byte(c)
}

func TestDocumentRoundTrip(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]crypto.Signer{"ES256": newKey(t), "EdDSA": ed25519Key(t)} {
		set := publishable(t, 7)
		doc := mustSign(t, set, key)
		got, err := ParseDocument(append(doc.Raw(), '\n'), []crypto.PublicKey{key.Public()})
		require.NoError(t, err, name)
		require.Equal(t, set, got.Set, name)
		require.Equal(t, testNow, got.IssuedAt, name)
		require.Equal(t, doc.Raw(), got.Raw(), name)

		hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(string(doc.Raw()), ".")[0])
		require.NoError(t, err)
		require.Contains(t, string(hdr), `"typ":"moat-pins+jws"`, name)
		require.Contains(t, string(hdr), `"alg":"`+name+`"`, name)
		require.Contains(t, string(hdr), `"kid":`, name)
	}
}

func TestParseDocumentRefuses(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	keys := []crypto.PublicKey{key.Public()}
	doc := mustSign(t, publishable(t, 2), key)
	parts := strings.Split(string(doc.Raw()), ".")
	goodPayload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	swapped := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(goodPayload), `"version":2`, `"version":9`, 1))) + "." + parts[2]
	onePin := `{"version":2,"expires":"2027-01-01T00:00:00Z","after_expiry":"keep-enforcing","issued_at":"2026-01-01T00:00:00Z","rules":[{"pattern":"a.example.com","pins":["` + appleLeafPin + `"]}]}`
	insecure := strings.Replace(onePin, `"rules"`, `"insecure_no_backup_pin":true,"rules"`, 1)
	noExpiry := `{"version":2,"issued_at":"2026-01-01T00:00:00Z","rules":[{"pattern":"a.example.com","pins":["` + appleLeafPin + `","` + userTrustPin + `"]}]}`
	withExpiry := strings.Replace(noExpiry, `"issued_at"`, `"expires":"2027-01-01T00:00:00Z","after_expiry":"keep-enforcing","issued_at"`, 1)

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"ok control", signRaw(t, jose.ES256, key, DocumentType, withExpiry), nil},
		{"other key", mustSign(t, publishable(t, 2), other).Raw(), ErrBadSignature},
		{"payload swapped", []byte(swapped), ErrBadSignature},
		{"signature cut", []byte(parts[0] + "." + parts[1] + "." + parts[2][:10]), ErrBadSignature},
		{"no typ", signRaw(t, jose.ES256, key, "", withExpiry), ErrInvalidDocument},
		{"other typ", signRaw(t, jose.ES256, key, "JWT", withExpiry), ErrInvalidDocument},
		{"HS256", signRaw(t, jose.HS256, make([]byte, 32), DocumentType, withExpiry), ErrInvalidDocument},
		{"ES384", signRaw(t, jose.ES384, mustP384(t), DocumentType, withExpiry), ErrInvalidDocument},
		{"alg none", []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"moat-pins+jws"}`)) + "." + parts[1] + "."), ErrInvalidDocument},
		{"JSON serialization", []byte(`{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`), ErrInvalidDocument},
		{"one pin", signRaw(t, jose.ES256, key, DocumentType, onePin), ErrNoBackupPin},
		{"insecure set", signRaw(t, jose.ES256, key, DocumentType, insecure), ErrInvalidDocument},
		{"no expiry", signRaw(t, jose.ES256, key, DocumentType, noExpiry), ErrInvalidDocument},
		{"not JSON", signRaw(t, jose.ES256, key, DocumentType, "hello"), ErrInvalidDocument},
		{"unknown member", signRaw(t, jose.ES256, key, DocumentType, strings.Replace(withExpiry, `{`, `{"x":1,`, 1)), ErrInvalidDocument},
		{"no issued_at", signRaw(t, jose.ES256, key, DocumentType, strings.Replace(withExpiry, `"issued_at":"2026-01-01T00:00:00Z",`, ``, 1)), ErrInvalidDocument},
		{"empty", nil, ErrInvalidDocument},
		{"garbage", []byte("a.b.c"), ErrInvalidDocument},
		{"huge", make([]byte, MaxDocumentBytes+1), ErrInvalidDocument},
	} {
		_, err := ParseDocument(tc.in, keys)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.want, tc.name)
		}
	}

	_, err = ParseDocument(doc.Raw(), nil)
	require.ErrorIs(t, err, ErrUnsupportedKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, err = ParseDocument(doc.Raw(), []crypto.PublicKey{rsaKey.Public()})
	require.ErrorIs(t, err, ErrUnsupportedKey)
	_, err = ParseDocument(doc.Raw(), []crypto.PublicKey{ed25519Key(t).Public()})
	require.ErrorIs(t, err, ErrBadSignature, "an Ed25519 key does not verify ES256")
}

func mustP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	return k
}

// While the publisher's signing key rotates, clients trust both keys.
func TestDocumentKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newK := newKey(t), ed25519Key(t)
	both := []crypto.PublicKey{oldKey.Public(), newK.Public()}
	for _, k := range []crypto.Signer{oldKey, newK} {
		_, err := ParseDocument(mustSign(t, publishable(t, 1), k).Raw(), both)
		require.NoError(t, err)
	}
	// Without a kid, every key is tried.
	payload := strings.Split(string(mustSign(t, publishable(t, 1), newK).Raw()), ".")[1]
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	require.NoError(t, err)
	_, err = ParseDocument(signRaw(t, jose.EdDSA, newK, DocumentType, string(raw)), both)
	require.NoError(t, err)
}

func TestSignDocumentRefuses(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	a, b := randomPin(t), randomPin(t)
	rules := []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}
	exp := testNow.Add(time.Hour)
	for name, cfg := range map[string]SetConfig{
		"no version": {Rules: rules, Expires: exp, AfterExpiry: KeepEnforcing},
		"no expiry":  {Version: 1, Rules: rules},
		"expired":    {Version: 1, Rules: rules, Expires: testNow, AfterExpiry: KeepEnforcing},
		"insecure":   {Version: 1, Rules: rules, Expires: exp, AfterExpiry: KeepEnforcing, InsecureNoBackupPin: true},
	} {
		set, err := NewSet(cfg)
		require.NoError(t, err, name)
		_, err = SignDocument(set, key, testNow)
		require.ErrorIs(t, err, ErrInvalidSet, name)
	}
	_, err := SignDocument(nil, key, testNow)
	require.ErrorIs(t, err, ErrInvalidSet)
	_, err = SignDocument(publishable(t, 1), nil, testNow)
	require.ErrorIs(t, err, ErrUnsupportedKey)
	_, err = SignDocument(publishable(t, 1), mustP384(t), testNow)
	require.ErrorIs(t, err, ErrUnsupportedKey)
}

func TestDocumentHandler(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	v2 := mustSign(t, publishable(t, 2), key)
	h, err := NewDocumentHandler(v2)
	require.NoError(t, err)

	serve := func(method string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, WellKnownPath, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := serve(http.MethodGet, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, DocumentContentType, rec.Header().Get("Content-Type"))
	require.Equal(t, v2.Raw(), rec.Body.Bytes())
	etag := rec.Header().Get("ETag")
	require.NotEmpty(t, etag)

	rec = serve(http.MethodHead, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Body.Bytes())
	rec = serve(http.MethodGet, map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, rec.Code)
	require.Empty(t, rec.Body.Bytes())
	rec = serve(http.MethodPost, nil)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)

	require.ErrorIs(t, h.Update(mustSign(t, publishable(t, 1), key)), ErrStaleDocument)
	v3 := mustSign(t, publishable(t, 3), key)
	require.NoError(t, h.Update(v3))
	rec = serve(http.MethodGet, map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, v3.Raw(), rec.Body.Bytes())

	_, err = NewDocumentHandler(nil)
	require.ErrorIs(t, err, ErrInvalidDocument)
}
