package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moatsec/moat/auth"
)

// FuzzValidate: any string given as an access token is refused or accepted
// without a panic; nothing unsigned by the key is ever accepted.
func FuzzValidate(f *testing.F) {
	fx := newTokenFixture(f)
	good := fx.mint(f, fx.header(), fx.claims())
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, good[:len(good)-2], "", "a.b.c", strings.Repeat(".", 100), "eyJhbGciOiJub25lIn0.e30.",
		// The malformed cases of issue 2: alg none/None, HS256, RS256
		// under an ES256 kid, a JWE with a wrong IV length, empty
		// segments, bad base64, a missing protected header.
		b64JSON(f, map[string]any{"alg": "None", "typ": "at+jwt", "kid": fx.kid}) + "." + parts[1] + ".",
		b64JSON(f, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": fx.kid}) + "." + parts[1] + "." + parts[2],
		b64JSON(f, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": fx.kid}) + "." + parts[1] + "." + parts[2],
		"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAEC.Y3Q.dGFn",
		"." + parts[1] + "." + parts[2], parts[0] + ".." + parts[2], parts[0] + "." + parts[1] + ".",
		parts[0] + "!." + parts[1] + "." + parts[2], parts[0] + "=." + parts[1] + "." + parts[2],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := fx.valid.Validate(s)
		if err == nil && s != good {
			// Only re-encodings of the good token could verify; they must
			// carry the same claims.
			if p.Subject != "alice" || p.ClientID != "client-1" {
				t.Fatalf("accepted a token with other claims: %+v", p)
			}
		}
	})
}

// FuzzDPoPVerify: any proof string is refused or accepted without a panic.
func FuzzDPoPVerify(f *testing.F) {
	now := time.Unix(1562262616, 0)
	v := newVerifier(f, func() time.Time { return now })
	var vec dpopVectors
	readVectors(f, &vec)
	for _, p := range vec.Proofs {
		f.Add(p.DPoP)
	}
	f.Add("")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.c2ln")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = v.Verify(context.Background(), s, auth.DPoPRequest{Method: "POST", URL: "https://server.example.com/token"})
	})
}

// FuzzRegistrationBody and FuzzChallengeBody send arbitrary JSON bodies,
// with a valid DPoP proof, to the endpoints: the answer is never a 500 and
// nothing panics.
func FuzzRegistrationBody(f *testing.F) {
	h := newHarness(f)
	r := h.raw()
	f.Add(`{"app_id":"a","platform":"ios","channel":"phone","device_id":"d","jwk":{"kty":"EC"},"nonce":"x"}`)
	f.Add(`{"app_id":"a","app_version":"\u0000","platform":"ios","channel":"phone","device_id":"d","jwk":{"kty":"oct","k":"AAAA"},"nonce":""}`)
	f.Add(`{"attestation":{"format":"x"}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzEndpoint(t, h, r, "/oauth/register", body)
	})
}

func FuzzChallengeBody(f *testing.F) {
	h := newHarness(f)
	r := h.raw()
	r.register()
	f.Add(`{"client_id":"` + r.id + `","scope":"reservations"}`)
	f.Add(`{"client_id":"` + r.id + `","scope":"transfer","acr_values":"urn:test:mfa","max_age":0}`)
	f.Add(`{"auth_session":"x","answers":{"UserLogin":{"username":"alice","password":"correct horse"}}}`)
	f.Add(`{"client_id":"` + r.id + `","scope":"reservations","answers":{"UserLogin":"not an object"}}`)
	f.Add(`{"client_id":"` + r.id + `","scope":"reservations","max_age":1e400}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzEndpoint(t, h, r, "/oauth/authorize-challenge", body)
	})
}

func fuzzEndpoint(t *testing.T, h *harness, r *raw, path, body string) {
	req := httptest.NewRequest(http.MethodPost, h.issuer()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	proof, err := r.ps.Proof(http.MethodPost, h.issuer()+path, "", "", h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("DPoP", proof)
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s answered %d to %q: %s", path, rec.Code, body, rec.Body.String())
	}
}
