package auth

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// RFC 7515 Appendix A.3: the ES256 example verifies, the tampered one does
// not.
func TestRFC7515ES256Vector(t *testing.T) {
	t.Parallel()
	var v struct {
		JWS          string          `json:"jws_compact"`
		JWK          json.RawMessage `json:"jwk"`
		PayloadExact string          `json:"payload_exact"`
		Negative     struct {
			Tampered string `json:"jws_compact_tampered"`
		} `json:"negative"`
	}
	readJSON(t, "testdata/rfc7515_A3_es256.json", &v)
	var key jose.JSONWebKey
	require.NoError(t, key.UnmarshalJSON(v.JWK))
	pub := key.Public().Key

	jws, err := parseCompactJWS(v.JWS, DefaultMaxTokenSize)
	require.NoError(t, err)
	require.NoError(t, jws.verify(AlgES256, pub))
	require.Equal(t, v.PayloadExact, string(jws.payload))

	bad, err := parseCompactJWS(v.Negative.Tampered, DefaultMaxTokenSize)
	if err == nil {
		err = bad.verify(AlgES256, pub)
	}
	require.Error(t, err)
}

// RFC 8037 A.4 (JOSE cookbook): the Ed25519 example verifies.
func TestRFC8037EdDSAVector(t *testing.T) {
	t.Parallel()
	var v struct {
		Input struct {
			Payload string          `json:"payload"`
			Key     json.RawMessage `json:"key"`
		} `json:"input"`
		Output struct {
			Compact string `json:"compact"`
		} `json:"output"`
	}
	readJSON(t, "testdata/cookbook_curve25519_jws.json", &v)
	var key jose.JSONWebKey
	require.NoError(t, key.UnmarshalJSON(v.Input.Key))
	jws, err := parseCompactJWS(v.Output.Compact, DefaultMaxTokenSize)
	require.NoError(t, err)
	require.NoError(t, jws.verify(AlgEdDSA, key.Public().Key))
	require.Equal(t, v.Input.Payload, string(jws.payload))
	// The same signature under the wrong algorithm or key type fails.
	require.ErrorIs(t, jws.verify(AlgES256, key.Public().Key), ErrAlgorithmNotAllowed)
}

func TestParseCompactJWSMalformed(t *testing.T) {
	t.Parallel()
	good := "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2ln"
	cases := map[string]string{
		"empty":                   "",
		"one segment":             "abc",
		"two segments":            "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ",
		"four segments":           good + ".x",
		"JWE five segments":       "eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y3Q.dGFn",
		"JWE wrong IV length":     "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAEC.Y3Q.dGFn",
		"JWE empty IV":            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0...Y3Q.dGFn",
		"missing header":          ".eyJhIjoxfQ.c2ln",
		"empty payload":           "eyJhbGciOiJFUzI1NiJ9..c2ln",
		"empty signature":         "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.",
		"header bad base64":       "ey!hbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2ln",
		"header padded base64":    "eyJhbGciOiJFUzI1NiJ9==.eyJhIjoxfQ.c2ln",
		"header std base64":       "eyJhbGciOiJFUzI1NiJ9+/.eyJhIjoxfQ.c2ln",
		"payload bad base64":      "eyJhbGciOiJFUzI1NiJ9.e$JhIjoxfQ.c2ln",
		"signature bad base64":    "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2l*",
		"header not JSON":         "bm90IGpzb24.eyJhIjoxfQ.c2ln",
		"header JSON array":       "WzFd.eyJhIjoxfQ.c2ln",
		"header without alg":      "e30.eyJhIjoxfQ.c2ln",
		"crit header":             "eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYiJdfQ.eyJhIjoxfQ.c2ln",
		"non-canonical base64url": "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfR.c2ln",
	}
	for name, in := range cases {
		_, err := parseCompactJWS(in, DefaultMaxTokenSize)
		require.Error(t, err, name)
		require.ErrorIs(t, err, ErrMalformedToken, name)
	}
	_, err := parseCompactJWS(good, DefaultMaxTokenSize)
	require.NoError(t, err)
	_, err = parseCompactJWS(strings.Repeat(".", 1<<20), DefaultMaxTokenSize)
	require.ErrorIs(t, err, ErrTokenTooLarge)
}

func TestNormalizeHTU(t *testing.T) {
	t.Parallel()
	same := [][2]string{
		{"https://server.example.com/token", "https://server.example.com/token"},
		{"HTTPS://Server.Example.COM:443/token", "https://server.example.com/token"},
		{"https://server.example.com/token?x=1#f", "https://server.example.com/token"},
		{"http://127.0.0.1:80/a", "http://127.0.0.1/a"},
		{"https://server.example.com", "https://server.example.com/"},
		{"https://server.example.com/%7Euser/%2f", "https://server.example.com/~user/%2F"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
	}
	for _, c := range same {
		require.True(t, sameHTU(c[0], c[1]), "%s vs %s", c[0], c[1])
	}
	different := [][2]string{
		{"https://server.example.com/token", "http://server.example.com/token"},
		{"https://server.example.com/token", "https://server.example.com:8443/token"},
		{"https://server.example.com/token", "https://evil.example.com/token"},
		{"https://server.example.com/token", "https://server.example.com/token/"},
		{"https://server.example.com/a/b", "https://server.example.com/a%2Fb"},
		{"ftp://server.example.com/token", "ftp://server.example.com/token"},
		{"/token", "/token"},
		{"https://user@server.example.com/token", "https://user@server.example.com/token"},
		{"::", "::"},
	}
	for _, c := range different {
		require.False(t, sameHTU(c[0], c[1]), "%s vs %s", c[0], c[1])
	}
}
