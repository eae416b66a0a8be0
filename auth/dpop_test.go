package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/kv"
)

type dpopVectors struct {
	Proofs []struct {
		Name        string `json:"name"`
		DPoP        string `json:"dpop"`
		AccessToken string `json:"access_token"`
		Expect      struct {
			HTM          string `json:"htm"`
			HTU          string `json:"htu"`
			IAT          int64  `json:"iat"`
			JTI          string `json:"jti"`
			VerifyAtUnix int64  `json:"verify_at_unix"`
		} `json:"expect"`
	} `json:"proofs"`
}

func readVectors(t testing.TB, v *dpopVectors) {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc9449_dpop_proofs.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func newVerifier(t testing.TB, now func() time.Time, mut ...func(*auth.DPoPConfig)) *auth.DPoPVerifier {
	t.Helper()
	cfg := auth.DPoPConfig{Algorithms: []string{auth.AlgES256, auth.AlgEdDSA}, Store: kv.NewMemory(kv.MemoryConfig{Now: now}), Now: now}
	for _, m := range mut {
		m(&cfg)
	}
	v, err := auth.NewDPoPVerifier(cfg)
	require.NoError(t, err)
	return v
}

// RFC 9449 Figures 4 and 12.
func TestDPoPRFC9449Vectors(t *testing.T) {
	t.Parallel()
	var vec dpopVectors
	readVectors(t, &vec)
	require.Len(t, vec.Proofs, 2)
	ctx := context.Background()
	for _, p := range vec.Proofs {
		at := time.Unix(p.Expect.VerifyAtUnix, 0)
		now := func() time.Time { return at }
		req := auth.DPoPRequest{Method: p.Expect.HTM, URL: p.Expect.HTU, AccessToken: p.AccessToken}

		proof, err := newVerifier(t, now).Verify(ctx, p.DPoP, req)
		require.NoError(t, err, p.Name)
		require.Equal(t, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", proof.KeyThumbprint, p.Name)
		require.Equal(t, p.Expect.JTI, proof.JTI)
		require.Equal(t, p.Expect.IAT, proof.IAT.Unix())

		neg := map[string]struct {
			req auth.DPoPRequest
			at  time.Time
		}{
			"wrong htm":       {auth.DPoPRequest{Method: "PUT", URL: req.URL, AccessToken: req.AccessToken}, at},
			"wrong htu":       {auth.DPoPRequest{Method: req.Method, URL: "https://evil.example.com/token", AccessToken: req.AccessToken}, at},
			"other token":     {auth.DPoPRequest{Method: req.Method, URL: req.URL, AccessToken: "another-token"}, at},
			"clock far ahead": {req, at.Add(10 * time.Minute)},
			"clock far back":  {req, at.Add(-10 * time.Minute)},
		}
		for name, n := range neg {
			when := n.at
			_, err := newVerifier(t, func() time.Time { return when }).Verify(ctx, p.DPoP, n.req)
			require.ErrorIs(t, err, auth.ErrInvalidDPoPProof, "%s: %s", p.Name, name)
		}
	}
}

func newProofKey(t testing.TB) (*ecdsa.PrivateKey, *client.ProofSigner) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ps, err := client.NewProofSigner(k)
	require.NoError(t, err)
	return k, ps
}

func TestDPoPReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	v := newVerifier(t, func() time.Time { return now })
	_, ps := newProofKey(t)
	req := auth.DPoPRequest{Method: "GET", URL: "https://api.example.com/r"}
	proof, err := ps.Proof("GET", req.URL, "", "", now)
	require.NoError(t, err)
	_, err = v.Verify(ctx, proof, req)
	require.NoError(t, err)
	_, err = v.Verify(ctx, proof, req)
	require.ErrorIs(t, err, auth.ErrDPoPReplay)

	// Concurrent uses of one fresh proof: exactly one wins.
	for round := 0; round < 10; round++ {
		proof, err := ps.Proof("GET", req.URL, "", "", now)
		require.NoError(t, err)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 2+round*5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := v.Verify(ctx, proof, req); err == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	}
}

func TestDPoPProofRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	key, ps := newProofKey(t)
	url := "https://api.example.com/r"
	req := auth.DPoPRequest{Method: "GET", URL: url}
	claims := func() map[string]any {
		return map[string]any{"jti": "j-" + time.Now().String(), "htm": "GET", "htu": url, "iat": now.Unix()}
	}
	pubJWK, err := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey})
	require.NoError(t, err)
	privJWK, err := json.Marshal(jose.JSONWebKey{Key: key})
	require.NoError(t, err)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherJWK, err := json.Marshal(jose.JSONWebKey{Key: &other.PublicKey})
	require.NoError(t, err)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edJWK, err := json.Marshal(jose.JSONWebKey{Key: edPriv.Public()})
	require.NoError(t, err)

	v := newVerifier(t, func() time.Time { return now })
	cases := map[string]string{
		"private key in jwk": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(privJWK)}, claims()),
		"wrong typ":          signES256(t, key, map[string]any{"typ": "JWT", "alg": "ES256", "jwk": json.RawMessage(pubJWK)}, claims()),
		"no typ":             signES256(t, key, map[string]any{"alg": "ES256", "jwk": json.RawMessage(pubJWK)}, claims()),
		"no jwk":             signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256"}, claims()),
		// JOSE names are case-sensitive: "TYP" is not typ, though
		// encoding/json would read it as typ.
		"TYP for typ": signES256(t, key, map[string]any{"TYP": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)}, claims()),
		"HTM for htm": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "case", "HTM": "GET", "htu": url, "iat": now.Unix()}),
		"duplicate htm": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			json.RawMessage(`{"jti":"dup","htm":"POST","htm":"GET","htu":"`+url+`","iat":`+strconv.FormatInt(now.Unix(), 10)+`}`)),
		"jwk of another key":   signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(otherJWK)}, claims()),
		"jwk does not fit alg": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(edJWK)}, claims()),
		"alg none":             b64JSON(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": json.RawMessage(pubJWK)}) + "." + b64JSON(t, claims()) + ".",
		"no jti": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"htm": "GET", "htu": url, "iat": now.Unix()}),
		"no iat": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "x", "htm": "GET", "htu": url}),
		"iat as string": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "x", "htm": "GET", "htu": url, "iat": "now"}),
		"iat a window ahead": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "ahead", "htm": "GET", "htu": url, "iat": now.Add(auth.DefaultDPoPWindow + time.Second).Unix()}),
		"iat a window behind": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "behind", "htm": "GET", "htu": url, "iat": now.Add(-auth.DefaultDPoPWindow - time.Second).Unix()}),
		"iat beyond a Duration": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "huge", "htm": "GET", "htu": url, "iat": 1e300}),
		"iat far negative": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "neg", "htm": "GET", "htu": url, "iat": -1e300}),
		"htm lower case": signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
			map[string]any{"jti": "y", "htm": "get", "htu": url, "iat": now.Unix()}),
		"empty":   "",
		"garbage": "not.a.proof",
	}
	for name, proof := range cases {
		_, err := v.Verify(ctx, proof, req)
		require.ErrorIs(t, err, auth.ErrInvalidDPoPProof, name)
	}

	// The same proof is fine from a verifier that accepts it, and fractional iat works.
	good := signES256(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(pubJWK)},
		map[string]any{"jti": "frac", "htm": "GET", "htu": url, "iat": float64(now.UnixMilli()) / 1000})
	p, err := v.Verify(ctx, good, req)
	require.NoError(t, err)
	require.Equal(t, ps.Thumbprint(), p.KeyThumbprint)

	// An allow-list without EdDSA refuses Ed25519 proofs.
	edSigner, err := client.NewProofSigner(edPriv)
	require.NoError(t, err)
	edProof, err := edSigner.Proof("GET", url, "", "", now)
	require.NoError(t, err)
	esOnly := newVerifier(t, func() time.Time { return now }, func(c *auth.DPoPConfig) { c.Algorithms = []string{auth.AlgES256} })
	_, err = esOnly.Verify(ctx, edProof, req)
	require.ErrorIs(t, err, auth.ErrAlgorithmNotAllowed)
	_, err = v.Verify(ctx, edProof, req)
	require.NoError(t, err, "EdDSA proofs verify where allowed")
}

func TestDPoPNonce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	v := newVerifier(t, func() time.Time { return now }, func(c *auth.DPoPConfig) { c.RequireNonce = true })
	_, ps := newProofKey(t)
	req := auth.DPoPRequest{Method: "POST", URL: "https://api.example.com/token"}
	proof, err := ps.Proof("POST", req.URL, "", "", now)
	require.NoError(t, err)
	_, err = v.Verify(ctx, proof, req)
	require.ErrorIs(t, err, auth.ErrDPoPNonce)
	n, err := v.Nonce(ctx)
	require.NoError(t, err)
	n2, err := v.Nonce(ctx)
	require.NoError(t, err)
	require.Equal(t, n, n2, "the current nonce is reused while fresh")
	proof, err = ps.Proof("POST", req.URL, "", "stale-or-forged", now)
	require.NoError(t, err)
	_, err = v.Verify(ctx, proof, req)
	require.ErrorIs(t, err, auth.ErrDPoPNonce)
	proof, err = ps.Proof("POST", req.URL, "", n, now)
	require.NoError(t, err)
	_, err = v.Verify(ctx, proof, req)
	require.NoError(t, err)
}

func TestDPoPConfigRequired(t *testing.T) {
	t.Parallel()
	_, err := auth.NewDPoPVerifier(auth.DPoPConfig{Store: kv.NewMemory(kv.MemoryConfig{})})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration)
	_, err = auth.NewDPoPVerifier(auth.DPoPConfig{Algorithms: []string{auth.AlgES256}})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration)
	_, err = auth.NewDPoPVerifier(auth.DPoPConfig{Algorithms: []string{"HS256"}, Store: kv.NewMemory(kv.MemoryConfig{})})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration)
}
