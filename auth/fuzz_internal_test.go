package auth

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzParseCompactJWS checks the hand-written JWS parser against go-jose:
// whatever the parser and verify accept, go-jose must accept with the same
// key and payload. (The parser may refuse more: it is stricter.)
func FuzzParseCompactJWS(f *testing.F) {
	var v struct {
		JWS      string          `json:"jws_compact"`
		JWK      json.RawMessage `json:"jwk"`
		Negative struct {
			Tampered string `json:"jws_compact_tampered"`
		} `json:"negative"`
	}
	readJSON(f, "testdata/rfc7515_A3_es256.json", &v)
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(v.JWK); err != nil {
		f.Fatal(err)
	}
	pub := key.Public().Key
	for _, s := range []string{
		v.JWS, v.Negative.Tampered, "", ".", "..", "...", "a.b.c", ".eyJhIjoxfQ.c2ln",
		"eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", "eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYiJdfQ.eyJhIjoxfQ.c2ln",
		"eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y3Q.dGFn",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		jws, err := parseCompactJWS(s, DefaultMaxTokenSize)
		if err != nil {
			return
		}
		if jws.verify(AlgES256, pub) != nil {
			return
		}
		theirs, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("we accepted what go-jose cannot parse: %v", err)
		}
		payload, err := theirs.Verify(pub)
		if err != nil {
			t.Fatalf("we verified what go-jose does not: %v", err)
		}
		if !bytes.Equal(payload, jws.payload) {
			t.Fatalf("payloads differ")
		}
	})
}

// FuzzNormalizeHTU: normalization never panics and is idempotent.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{"https://a.example/x", "HTTPS://A.EXAMPLE:443/%7e?q#f", "http://[::1]:80/", "%", "https://a/%zz", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := normalizeHTU(s)
		if !ok {
			return
		}
		n2, ok := normalizeHTU(n)
		if !ok || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, n2, ok)
		}
	})
}
