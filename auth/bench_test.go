package auth_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// discardWriter is a minimal ResponseWriter so that benchmarks measure the
// middleware, not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

type benchEnv struct {
	key    *ecdsa.PrivateKey
	kid    string
	origin string
	res    *auth.Resource
	// uncached keeps one token in its cache.
	uncached *auth.Resource
	now      time.Time
}

func newBenchEnv(b *testing.B) *benchEnv {
	f := newTokenFixture(b)
	now := time.Now()
	store := kv.NewMemory(kv.MemoryConfig{})
	valid, err := auth.NewValidator(auth.ValidatorConfig{Issuer: testIssuer, Audience: testAudience,
		Algorithms: []string{auth.AlgES256}, Keys: f.keys})
	if err != nil {
		b.Fatal(err)
	}
	dpop, err := auth.NewDPoPVerifier(auth.DPoPConfig{Algorithms: []string{auth.AlgES256}, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	res, err := auth.NewResource(auth.ResourceConfig{Validator: valid, DPoP: dpop, Store: store,
		Origin: testAudience, AcceptBearerTokens: true, CacheSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	// A cache of one entry: a ring of tokens misses it on every request.
	uncached, err := auth.NewResource(auth.ResourceConfig{Validator: valid, DPoP: dpop, Store: store,
		Origin: testAudience, AcceptBearerTokens: true, CacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{key: f.key, kid: f.kid, origin: testAudience, res: res, uncached: uncached, now: now}
}

// token returns a typical access token; jkt "" makes a Bearer token.
func (e *benchEnv) token(b *testing.B, jti, jkt string) string {
	c := map[string]any{
		"iss": testIssuer, "sub": "user-8f3a9c21", "aud": testAudience, "exp": e.now.Add(time.Hour).Unix(),
		"iat": e.now.Unix(), "jti": jti, "client_id": "Yp3rPz8vLq0sKb2nWm4xTg", "scope": "reservations payments",
		"acr": "urn:moat:acr:mfa", "amr": []string{"pwd", "sms"}, "amr_at": []int64{e.now.Unix(), e.now.Unix()},
		"auth_time": e.now.Unix(), "app_id": "com.example.travel", "app_version": "1.10.0",
		"platform": "ios", "channel": "phone", "device_id": "6F1C2A7E-0B34-4C5D-9E8F-112233445566",
	}
	if jkt != "" {
		c["cnf"] = map[string]string{"jkt": jkt}
	}
	return signES256(b, e.key, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": e.kid}, c)
}

// BenchmarkProtectedRequest measures one request through the resource
// middleware against the floor of one ECDSA P-256 verification. Run:
//
//	go test -run x -bench ProtectedRequest -benchtime 2s -count 5 ./auth/
func BenchmarkProtectedRequest(b *testing.B) {
	env := newBenchEnv(b)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	protected := env.res.Require("reservations")(ok)
	path := "/reservations/42"
	newReq := func(auth string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, env.origin+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.RequestURI = path
		r.Header.Set("Authorization", auth)
		return r
	}
	w := &discardWriter{h: http.Header{}}

	b.Run("floor-ecdsa-p256", func(b *testing.B) {
		tok := env.token(b, "floor", "")
		input := tok[:strings.LastIndexByte(tok, '.')]
		sum := sha256.Sum256([]byte(input))
		sig, err := ecdsa.SignASN1(nil, env.key, sum[:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			s := sha256.Sum256([]byte(input))
			if !ecdsa.VerifyASN1(&env.key.PublicKey, s[:], sig) {
				b.Fatal("verify")
			}
		}
	})

	b.Run("bare-handler", func(b *testing.B) {
		r := newReq("Bearer x")
		b.ReportAllocs()
		for b.Loop() {
			ok.ServeHTTP(w, r)
		}
	})

	b.Run("bearer-cached", func(b *testing.B) {
		r := newReq("Bearer " + env.token(b, "cached-bearer", ""))
		protected.ServeHTTP(w, r) // warm the cache
		b.ReportAllocs()
		for b.Loop() {
			protected.ServeHTTP(w, r)
		}
	})

	b.Run("dpop-cached-token", func(b *testing.B) {
		ps, jkt := newBenchProofSigner(b)
		tok := env.token(b, "cached-dpop", jkt)
		r := newReq("DPoP " + tok)
		proofs := make([]string, b.N+1)
		for i := range proofs {
			p, err := ps.Proof(http.MethodGet, env.origin+path, tok, "", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			proofs[i] = p
		}
		r.Header.Set("DPoP", proofs[b.N])
		protected.ServeHTTP(w, r) // warm the token and key caches
		dpop := r.Header["Dpop"]
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			dpop[0] = proofs[i]
			protected.ServeHTTP(w, r)
		}
	})

	// bearer-uncached verifies every token: a ring of 1024 distinct tokens
	// through a Resource whose cache keeps one. (Building b.N tokens up
	// front instead would leave the garbage collector scanning a large
	// heap of them during the timed loop.)
	b.Run("bearer-uncached", func(b *testing.B) {
		uncached := env.uncached.Require("reservations")(ok)
		reqs := make([]*http.Request, 1024)
		for i := range reqs {
			reqs[i] = newReq("Bearer " + env.token(b, fmt.Sprintf("uncached-%d", i), ""))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			uncached.ServeHTTP(w, reqs[i%len(reqs)])
		}
	})
}

func newBenchProofSigner(b *testing.B) (interface {
	Proof(method, url, accessToken, nonce string, now time.Time) (string, error)
}, string) {
	_, ps := newProofKey(b)
	return ps, ps.Thumbprint()
}

// BenchmarkOversizedToken shows that a huge token is refused before any
// decoding, in time independent of its size.
func BenchmarkOversizedToken(b *testing.B) {
	f := newTokenFixture(b)
	dots := strings.Repeat(".", 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = f.valid.Validate(dots)
	}
}
