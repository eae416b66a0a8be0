package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
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

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestTravelFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	c := h.newClient("device-1", "alice", "correct horse")
	require.NoError(t, c.Authorize(ctx, "reservations", "payments"))

	resp, err := h.get(c, "/reservations/42")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "reservation 42 for alice", body(t, resp))

	// Paying needs the SMS factor: the client steps up on its own.
	resp, err = h.post(c, "/reservations/42/pay")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "paid", body(t, resp))
	require.Contains(t, h.events.kinds(), "step_up_completed")
}

func TestStepUpAsksOnlyTheMissingFactor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	var pwdAsked, smsAsked int
	c, err := client.New(ctx, client.Config{
		Issuer: h.issuer(), AppID: "com.example.travel", AppVersion: "1.10.0", Platform: "ios",
		Channel: "phone", DeviceID: "d", Now: h.clock.Now,
		Handlers: map[string]client.ChallengeHandler{
			"UserLogin": func(context.Context, json.RawMessage) (any, error) {
				pwdAsked++
				return map[string]string{"username": "alice", "password": "correct horse"}, nil
			},
			"SMSOTP": func(context.Context, json.RawMessage) (any, error) {
				smsAsked++
				return map[string]string{"code": "123456"}, nil
			},
		},
	})
	require.NoError(t, err)
	require.NoError(t, c.Register(ctx))
	require.NoError(t, c.Authorize(ctx, "reservations", "payments"))
	require.Equal(t, 1, pwdAsked)
	require.Equal(t, 0, smsAsked, "signing in asks for the password only")
	h.clock.Advance(2 * time.Minute)
	resp, err := h.post(c, "/reservations/1/pay")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1, pwdAsked, "the password is not asked again while its success lasts")
	require.Equal(t, 1, smsAsked)
	// A second payment within five minutes needs nothing new.
	resp, err = h.post(c, "/reservations/2/pay")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1, smsAsked)
	// Six minutes later the SMS factor is stale: only the SMS is asked again
	// (the password succeeded within max_age=300? no: 8 minutes ago, so
	// max_age makes it ask again too).
	h.clock.Advance(6 * time.Minute)
	resp, err = h.post(c, "/reservations/3/pay")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, smsAsked)
	require.Equal(t, 2, pwdAsked, "max_age=300 applies to every check of the acr")
}

// MobileFirst's way: a scope mapped to several checks asks all of them.
func TestScopeMappedToSeveralChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "transfer"})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, out["challenges"], "UserLogin")
	sess := out["auth_session"]
	status, out = r.challenge(map[string]any{"auth_session": sess,
		"answers": map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "correct horse"}}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, out["challenges"], "SMSOTP", "the second check follows")
	require.Equal(t, sess, out["auth_session"])
	status, out = r.challenge(map[string]any{"auth_session": sess, "answers": map[string]any{"SMSOTP": map[string]string{"code": "123456"}}})
	require.Equal(t, http.StatusOK, status, out)
	status, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {out["authorization_code"].(string)}})
	require.Equal(t, http.StatusOK, status, tok)
	p, err := h.srv.Validator().Validate(tok["access_token"].(string))
	require.NoError(t, err)
	require.Equal(t, []string{"pwd", "sms"}, p.AMR)
	require.Equal(t, acrMFA, p.ACR)
	require.Equal(t, "alice", p.Subject)
	require.Equal(t, r.ps.Thumbprint(), p.KeyThumbprint)
	require.LessOrEqual(t, p.Expiry.Unix(), h.clock.Now().Add(5*time.Minute).Unix(), "a token never outlives the checks that granted it")
	require.Equal(t, "DPoP", tok["token_type"])
	require.NotEmpty(t, tok["auth_session"])
	require.NotEqual(t, sess, tok["auth_session"], "the session is rekeyed at the token endpoint")
}

func TestBlockedCheckRefusesTheRightAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	require.Equal(t, http.StatusUnauthorized, status)
	sess := out["auth_session"]
	wrong := map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "nope"}}
	for i := 0; i < 3; i++ {
		status, out = r.challenge(map[string]any{"auth_session": sess, "answers": wrong})
		require.Equal(t, http.StatusUnauthorized, status)
	}
	status, out, hdr := r.do("POST", "/oauth/authorize-challenge",
		map[string]any{"auth_session": sess, "answers": map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "correct horse"}}},
		"application/json", map[string]string{"DPoP": r.proof("POST", "/oauth/authorize-challenge", "")})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "check_blocked", out["error"])
	require.Equal(t, "UserLogin", out["check"])
	require.NotEmpty(t, out["blocked_until"])
	require.Equal(t, "60", hdr.Get("Retry-After"))
	require.Contains(t, h.events.kinds(), "check_blocked")
}

func TestChallengeEndpointRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	other := h.raw()
	other.register()

	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "unknown-scope"})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_scope", out["error"])

	status, out = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations", "acr_values": "urn:nope"})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_request", out["error"])

	status, out = r.challenge(map[string]any{"scope": "reservations"})
	require.Equal(t, http.StatusBadRequest, status)

	status, out = r.challenge(map[string]any{"client_id": other.id, "scope": "reservations"})
	require.Equal(t, http.StatusUnauthorized, status, "another client's id with my key")
	require.Equal(t, "invalid_client", out["error"])

	status, out = r.challenge(map[string]any{"client_id": "no-such-client", "scope": "reservations"})
	require.Equal(t, http.StatusUnauthorized, status)

	status, out = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations", "answers": map[string]any{"NoSuchCheck": 1}})
	require.Equal(t, http.StatusBadRequest, status)

	status, out = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations", "max_age": -1})
	require.Equal(t, http.StatusBadRequest, status)

	// Sessions: unknown, foreign, expired.
	status, out = r.challenge(map[string]any{"auth_session": "made-up"})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_session", out["error"])

	_, out = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	sess := out["auth_session"].(string)
	require.GreaterOrEqual(t, len(sess), 43, "auth_session carries at least 256 bits")
	status, out = other.challenge(map[string]any{"auth_session": sess})
	require.Equal(t, http.StatusBadRequest, status, "a session presented with another key")
	require.Equal(t, "invalid_session", out["error"])

	h.clock.Advance(auth.DefaultRefreshTokenTTL + time.Second)
	status, out = r.challenge(map[string]any{"auth_session": sess})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_session", out["error"])

	// No DPoP proof, a replayed proof, a proof for another URL.
	status, out, _ = r.do("POST", "/oauth/authorize-challenge", map[string]any{"client_id": r.id, "scope": "reservations"}, "application/json", nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_dpop_proof", out["error"])
	p := r.proof("POST", "/oauth/authorize-challenge", "")
	r.do("POST", "/oauth/authorize-challenge", map[string]any{"client_id": r.id, "scope": "reservations"}, "application/json", map[string]string{"DPoP": p})
	status, out, _ = r.do("POST", "/oauth/authorize-challenge", map[string]any{"client_id": r.id, "scope": "reservations"}, "application/json", map[string]string{"DPoP": p})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_dpop_proof", out["error"])
	status, _, _ = r.do("POST", "/oauth/authorize-challenge", map[string]any{"client_id": r.id, "scope": "reservations"}, "application/json",
		map[string]string{"DPoP": r.proof("POST", "/oauth/token", "")})
	require.Equal(t, http.StatusBadRequest, status)

	// Malformed bodies.
	for _, b := range []string{"", "{", "[]", `{"scope":1}`, `{"unknown":true}`, `{"client_id":"a"} trailing`} {
		status, _, _ := r.do("POST", "/oauth/authorize-challenge", b, "application/json",
			map[string]string{"DPoP": r.proof("POST", "/oauth/authorize-challenge", "")})
		require.Equal(t, http.StatusBadRequest, status, b)
	}
}

func TestAuthorizationCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	other := h.raw()
	other.register()

	code := r.code("reservations")
	status, out := other.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusBadRequest, status, "presented with another key")
	require.Equal(t, "invalid_grant", out["error"])
	status, _ = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusBadRequest, status, "a code is burnt by any presentation")

	code = r.code("reservations")
	status, out = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {other.id}})
	require.Equal(t, http.StatusBadRequest, status, "another client's id")

	code = r.code("reservations")
	status, out = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusOK, status, out)
	status, out = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusBadRequest, status, "reused")
	require.Equal(t, "invalid_grant", out["error"])

	code = r.code("reservations")
	h.clock.Advance(61 * time.Second)
	status, out = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusBadRequest, status, "expired after 60 s")

	// Form rules.
	status, out = r.token(url.Values{"grant_type": {"password"}})
	require.Equal(t, "unsupported_grant_type", out["error"])
	status, out, _ = r.do("POST", "/oauth/token", "grant_type=authorization_code&code=a&code=b", "application/x-www-form-urlencoded",
		map[string]string{"DPoP": r.proof("POST", "/oauth/token", "")})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_request", out["error"])
	status, _, _ = r.do("POST", "/oauth/token", `{"grant_type":"authorization_code"}`, "application/json", nil)
	require.Equal(t, http.StatusBadRequest, status)

	_, err := auth.NewServer(auth.Config{})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	rt1 := tok["refresh_token"].(string)
	status, tok2 := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	require.Equal(t, http.StatusOK, status, tok2)
	rt2 := tok2["refresh_token"].(string)
	require.NotEqual(t, rt1, rt2)
	require.NotEqual(t, tok["access_token"], tok2["access_token"])

	// Presenting rt1 again revokes the family: rt2 dies too.
	status, out := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_grant", out["error"])
	status, _ = r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
	require.Equal(t, http.StatusBadRequest, status, "the whole family is revoked")
	require.Contains(t, h.events.kinds(), "refresh_token_reuse")

	// Another key cannot use a refresh token.
	_, tok = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	thief := h.raw()
	thief.register()
	status, _ = thief.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, status, "a thief's failed attempt does not burn the token")
}

func TestConcurrentRefreshExactlyOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	rt := tok["refresh_token"].(string)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if status == http.StatusOK {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

func TestRefreshReRunsPolicyAndChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	calls := h.app.calls
	h.clock.Advance(25 * time.Hour) // AppCheck's success (24 h) and UserLogin's (1 h) have expired
	status, out := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "insufficient_authorization", out["error"])
	require.Greater(t, h.app.calls, calls, "the mandatory check ran again")

	// A blocked device cannot refresh.
	r2 := h.raw()
	r2.register()
	_, tok = r2.token(url.Values{"grant_type": {"authorization_code"}, "code": {r2.code("reservations")}})
	h.policy.block("raw-device")
	status, out = r2.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "device_blocked", out["error"])
	require.Equal(t, "Reported stolen", out["message"])
	status, out = r2.challenge(map[string]any{"client_id": r2.id, "scope": "reservations"})
	require.Equal(t, http.StatusForbidden, status, "nor sign in again")
}

func TestResourceRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	at := tok["access_token"].(string)
	get := func(hdr map[string]string) (int, map[string]any, http.Header) {
		return r.do("GET", "/reservations/7", nil, "", hdr)
	}
	status, _, _ := get(map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/7", at)})
	require.Equal(t, http.StatusOK, status)

	status, out, hdr := get(nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Len(t, hdr.Values("WWW-Authenticate"), 2, "no credentials: both challenges")

	status, out, hdr = get(map[string]string{"Authorization": "Bearer " + at})
	require.Equal(t, http.StatusUnauthorized, status, "a DPoP-bound token presented as Bearer")
	require.Equal(t, "invalid_token", out["error"])
	require.Contains(t, hdr.Get("WWW-Authenticate"), `Bearer realm="moat", error="invalid_token"`)

	status, _, _ = get(map[string]string{"Authorization": "DPoP " + at})
	require.Equal(t, http.StatusUnauthorized, status, "no proof")

	p := r.proof("GET", "/reservations/7", at)
	get(map[string]string{"Authorization": "DPoP " + at, "DPoP": p})
	status, out, hdr = get(map[string]string{"Authorization": "DPoP " + at, "DPoP": p})
	require.Equal(t, http.StatusUnauthorized, status, "replayed proof")
	require.Equal(t, "invalid_dpop_proof", out["error"])
	require.Contains(t, hdr.Get("WWW-Authenticate"), "DPoP ")

	thief := h.raw()
	status, _, _ = get(map[string]string{"Authorization": "DPoP " + at, "DPoP": thief.proof("GET", "/reservations/7", at)})
	require.Equal(t, http.StatusUnauthorized, status, "a stolen token with the thief's key")

	status, _, _ = get(map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/8", at)})
	require.Equal(t, http.StatusUnauthorized, status, "proof for another URL")
	status, _, _ = get(map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/7", "other")})
	require.Equal(t, http.StatusUnauthorized, status, "proof with another ath")

	status, out, _ = r.do("GET", "/reports", nil, "", map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reports", at)})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "insufficient_scope", out["error"])

	status, _, _ = get(map[string]string{"Authorization": "DPoP " + at + "x", "DPoP": r.proof("GET", "/reservations/7", at+"x")})
	require.Equal(t, http.StatusUnauthorized, status)

	h.clock.Advance(11 * time.Minute)
	status, out, _ = get(map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/7", at)})
	require.Equal(t, http.StatusUnauthorized, status, "expired, even though it is cached")
	require.Contains(t, out["error_description"], "expired")
}

func TestStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	code := r.code("reservations")
	status, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusOK, status)
	at := tok["access_token"].(string)
	proofs := map[string]string{
		"register": r.proof("POST", "/oauth/register", ""), "challenge": r.proof("POST", "/oauth/authorize-challenge", ""),
		"token": r.proof("POST", "/oauth/token", ""), "resource": r.proof("GET", "/reservations/1", at),
	}
	reg := r.registration()
	h.store.setBroken(true)
	defer h.store.setBroken(false)

	status, _, _ = r.do("POST", "/oauth/nonce", nil, "", nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	status, _, _ = r.do("POST", "/oauth/register", reg, "application/json", map[string]string{"DPoP": proofs["register"]})
	require.Equal(t, http.StatusServiceUnavailable, status)
	status, _, _ = r.do("POST", "/oauth/authorize-challenge", map[string]any{"client_id": r.id, "scope": "reservations"}, "application/json",
		map[string]string{"DPoP": proofs["challenge"]})
	require.Equal(t, http.StatusServiceUnavailable, status)
	status, out, _ := r.do("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}.Encode(),
		"application/x-www-form-urlencoded", map[string]string{"DPoP": proofs["token"]})
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "temporarily_unavailable", out["error"])
	status, out, _ = r.do("GET", "/reservations/1", nil, "", map[string]string{"Authorization": "DPoP " + at, "DPoP": proofs["resource"]})
	require.Equal(t, http.StatusServiceUnavailable, status, "a cached token still needs the replay cache")
	require.NotContains(t, out["error_description"], "store down", "internal errors stay internal")
}

func TestRegistrationRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	send := func(body any, proof string) (int, map[string]any) {
		status, out, _ := r.do("POST", "/oauth/register", body, "application/json", map[string]string{"DPoP": proof})
		return status, out
	}
	regProof := func() string { return r.proof("POST", "/oauth/register", "") }

	for _, field := range []string{"app_id", "platform", "channel", "device_id", "jwk"} {
		b := r.registration()
		delete(b, field)
		status, out := send(b, regProof())
		require.Equal(t, http.StatusBadRequest, status, field)
		require.Equal(t, "invalid_client_metadata", out["error"], field)
	}
	b := r.registration()
	b["app_id"] = strings.Repeat("a", 300)
	status, _ := send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status)
	// Platform and channel choose the policies: other spellings of a
	// configured name are refused, not matched to no policy at all.
	for field, v := range map[string]string{"platform": "Android ", "channel": "Phone"} {
		b = r.registration()
		b[field] = v
		status, out := send(b, regProof())
		require.Equal(t, http.StatusBadRequest, status, "%s %q", field, v)
		require.Equal(t, "invalid_client_metadata", out["error"])
	}
	b = r.registration()
	b["platform"] = "ANDROID"
	status, _ = send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status)
	// A second spelling of a member: encoding/json would let it override
	// device_id, while a proxy reading the body sees the first one.
	b = r.registration()
	b["DEVICE_ID"] = "phone-of-someone-else"
	status, _ = send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status, "a member spelled twice")
	b = r.registration()
	b["device_id"] = "dev-utf8"
	raw, err := json.Marshal(b)
	require.NoError(t, err)
	status, _ = send(strings.Replace(string(raw), "dev-utf8", "dev\xff", 1), regProof())
	require.Equal(t, http.StatusBadRequest, status, "invalid UTF-8 (encoding/json would read U+FFFD)")

	// Keys: private, P-384, RSA, not a key.
	priv, err := json.Marshal(jose.JSONWebKey{Key: r.key})
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for name, jwk := range map[string]any{"private": json.RawMessage(priv), "P-384": jose.JSONWebKey{Key: &p384.PublicKey}, "junk": "abc"} {
		b := r.registration()
		b["jwk"] = jwk
		status, _ := send(b, regProof())
		require.Equal(t, http.StatusBadRequest, status, name)
	}

	// The proof must come from the key being registered.
	other := h.raw()
	status, out := send(r.registration(), other.proof("POST", "/oauth/register", ""))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_dpop_proof", out["error"])

	// Nonces: missing, made up, reused.
	b = r.registration()
	b["nonce"] = ""
	status, _ = send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status)
	b = r.registration()
	status, _ = send(b, regProof())
	require.Equal(t, http.StatusCreated, status)
	status, out = send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status, "nonce reused")
	require.Contains(t, out["error_description"], "nonce")
	b = r.registration()
	h.clock.Advance(auth.DefaultNonceTTL + time.Second)
	status, out = send(b, regProof())
	require.Equal(t, http.StatusBadRequest, status, "nonce expired")
	require.Contains(t, out["error_description"], "nonce")

	// Malformed bodies and content types.
	for _, body := range []string{"", "null", "{", `{"app_id":5}`, `{"extra":1}`} {
		status, _ := send(body, regProof())
		require.Equal(t, http.StatusBadRequest, status, body)
	}
	status, _, _ = r.do("POST", "/oauth/register", r.registration(), "text/plain", map[string]string{"DPoP": regProof()})
	require.Equal(t, http.StatusBadRequest, status)
	status, _, _ = r.do("POST", "/oauth/register", strings.Repeat("x", 100<<10), "application/json", map[string]string{"DPoP": regProof()})
	require.Equal(t, http.StatusBadRequest, status, "oversized")
}

type refusingPolicy struct{ err error }

func (p refusingPolicy) AllowRegistration(context.Context, *auth.Registration, *auth.Client) error {
	return p.err
}

func TestRegistrationPolicy(t *testing.T) {
	t.Parallel()
	refusal := &auth.Refusal{Code: "app_version_blocked", Description: "update the app", Extra: map[string]any{"download_url": "https://example.com/app"}}
	h := newHarness(t, func(c *auth.Config) { c.RegistrationPolicy = refusingPolicy{refusal} })
	r := h.raw()
	status, out, _ := r.do("POST", "/oauth/register", r.registration(), "application/json", map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "app_version_blocked", out["error"])
	require.Equal(t, "https://example.com/app", out["download_url"])
	require.Contains(t, h.events.kinds(), "registration_refused")

	h = newHarness(t, func(c *auth.Config) { c.RegistrationPolicy = refusingPolicy{errors.New("attestation service down")} })
	r = h.raw()
	status, out, _ = r.do("POST", "/oauth/register", r.registration(), "application/json", map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
	require.Equal(t, http.StatusServiceUnavailable, status, "a policy that cannot decide refuses")
	require.NotContains(t, out["error_description"], "attestation service down")

	_, err := auth.NewServer(auth.Config{Issuer: "https://a.example", Store: kv.NewMemory(kv.MemoryConfig{}), Clients: auth.NewMemoryClients(), Keys: h.keys})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration, "a registration policy is required")
}

func TestConfidentialClientsIntrospectionRevocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	form := func(v url.Values, user, pass string) (int, map[string]any) {
		req, err := http.NewRequest("POST", h.issuer()+"/oauth/token", strings.NewReader(v.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	post := func(path string, v url.Values) (int, map[string]any) {
		req, err := http.NewRequest("POST", h.issuer()+path, strings.NewReader(v.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("introspector", "introspector-secret")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	status, out := form(url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}}, "introspector", "wrong")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", out["error"])
	status, out = form(url.Values{"grant_type": {"client_credentials"}, "scope": {"payments"}}, "introspector", "introspector-secret")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_scope", out["error"])
	status, out = form(url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}, "client_id": {"introspector"}, "client_secret": {"introspector-secret"}}, "", "")
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, "Bearer", out["token_type"])
	bearer := out["access_token"].(string)
	req, _ := http.NewRequest("GET", h.issuer()+"/reports", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	// Introspection of a user's DPoP token.
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	status, out = post("/oauth/introspect", url.Values{"token": {at}})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, out["active"])
	require.Equal(t, "alice", out["sub"])
	require.Equal(t, "DPoP", out["token_type"])
	require.Equal(t, r.ps.Thumbprint(), out["cnf"].(map[string]any)["jkt"])
	status, out = post("/oauth/introspect", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}})
	require.Equal(t, true, out["active"])
	status, out = post("/oauth/introspect", url.Values{"token": {"garbage"}})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, out["active"])
	require.Len(t, out, 1, "an inactive answer says nothing else")

	// Introspection needs authentication and the introspect scope.
	req, _ = http.NewRequest("POST", h.issuer()+"/oauth/introspect", strings.NewReader("token="+at))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()

	// Revocation by the owning public client, with DPoP.
	status, _, _ = r.do("POST", "/oauth/revoke", url.Values{"token": {at}, "client_id": {r.id}}.Encode(), "application/x-www-form-urlencoded",
		map[string]string{"DPoP": r.proof("POST", "/oauth/revoke", "")})
	require.Equal(t, http.StatusOK, status)
	status, out = post("/oauth/introspect", url.Values{"token": {at}})
	require.Equal(t, false, out["active"])
	status, _, _ = r.do("GET", "/reservations/1", nil, "", map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/1", at)})
	require.Equal(t, http.StatusUnauthorized, status, "a revoked token is refused at once")

	status, _, _ = r.do("POST", "/oauth/revoke", url.Values{"token": {rt}, "client_id": {r.id}}.Encode(), "application/x-www-form-urlencoded",
		map[string]string{"DPoP": r.proof("POST", "/oauth/revoke", "")})
	require.Equal(t, http.StatusOK, status)
	status, _ = r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	require.Equal(t, http.StatusBadRequest, status)

	// A blocked device's tokens are inactive for introspecting resource servers.
	r2 := h.raw()
	r2.register()
	_, tok = r2.token(url.Values{"grant_type": {"authorization_code"}, "code": {r2.code("reservations")}})
	h.policy.block("raw-device")
	_, out = post("/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}})
	require.Equal(t, false, out["active"])
}

func TestLogoutEndsSignIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	c := h.newClient("d-logout", "alice", "correct horse")
	require.NoError(t, c.Authorize(ctx, "reservations"))
	at := c.AccessToken()
	require.NoError(t, c.Logout(ctx))
	r := h.raw()
	status, _, _ := r.do("GET", "/reservations/1", nil, "", map[string]string{"Authorization": "DPoP " + at})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, h.events.kinds(), "logout")
}

func TestSSOGroupSharesAndEndsTogether(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) {
		c.SSOChecks = []string{"UserLogin"}
		c.SSOGroups = map[string]string{"com.example.travel": "example", "com.example.miles": "example"}
	})
	ctx := context.Background()
	var asked atomic.Int32
	mk := func(app, device string) *client.Client {
		c, err := client.New(ctx, client.Config{Issuer: h.issuer(), AppID: app, AppVersion: "1.0.0", Platform: "ios",
			Channel: "phone", DeviceID: device, Now: h.clock.Now, Handlers: map[string]client.ChallengeHandler{
				"UserLogin": func(context.Context, json.RawMessage) (any, error) {
					asked.Add(1)
					return map[string]string{"username": "alice", "password": "correct horse"}, nil
				}}})
		require.NoError(t, err)
		require.NoError(t, c.Register(ctx))
		return c
	}
	travel := mk("com.example.travel", "phone-1")
	miles := mk("com.example.miles", "phone-1")
	otherPhone := mk("com.example.miles", "phone-2")
	require.NoError(t, travel.Authorize(ctx, "reservations"))
	require.NoError(t, miles.Authorize(ctx, "reservations"))
	require.Equal(t, int32(1), asked.Load(), "the second app of the group on the device signs in without the password")
	require.NoError(t, otherPhone.Authorize(ctx, "reservations"))
	require.Equal(t, int32(2), asked.Load(), "another device shares nothing")
	require.NoError(t, travel.Logout(ctx))
	require.Error(t, miles.Refresh(ctx), "signing out of one app ends the group's sign-in")
	require.NoError(t, miles.Authorize(ctx, "reservations"))
	require.Equal(t, int32(3), asked.Load())
}

func TestDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	status, d, hdr := r.do("GET", "/.well-known/oauth-authorization-server", nil, "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, h.issuer(), d["issuer"])
	require.Equal(t, h.issuer()+"/oauth/authorize-challenge", d["authorization_challenge_endpoint"])
	require.Equal(t, h.issuer()+"/oauth/token", d["token_endpoint"])
	require.Equal(t, []any{"ES256"}, d["dpop_signing_alg_values_supported"])
	require.Contains(t, d["acr_values_supported"], acrMFA)
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	status, jwks, _ := r.do("GET", "/oauth/jwks", nil, "", nil)
	require.Equal(t, http.StatusOK, status)
	keys := jwks["keys"].([]any)
	require.Len(t, keys, 1)
	k := keys[0].(map[string]any)
	require.Equal(t, h.keys.CurrentKeyID(), k["kid"])
	require.NotContains(t, k, "d", "never a private key")
}

// Auth sessions: reused after the token endpoint retired them, or
// presented with another client's id, are refused with invalid_session.
// (Expired and foreign-key sessions: TestChallengeEndpointRefusals.)
func TestAuthSessionReuse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	other := h.raw()
	other.register()

	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	require.Equal(t, http.StatusUnauthorized, status)
	sess := out["auth_session"].(string)
	status, out = r.challenge(map[string]any{"auth_session": sess, "client_id": other.id})
	require.Equal(t, http.StatusBadRequest, status, "the session with another client's id")
	require.Equal(t, "invalid_session", out["error"])

	status, out = r.challenge(map[string]any{"auth_session": sess,
		"answers": map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "correct horse"}}})
	require.Equal(t, http.StatusOK, status, out)
	status, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {out["authorization_code"].(string)}})
	require.Equal(t, http.StatusOK, status, tok)
	next := tok["auth_session"].(string)
	require.NotEqual(t, sess, next)

	status, out = r.challenge(map[string]any{"auth_session": sess, "acr_values": acrMFA})
	require.Equal(t, http.StatusBadRequest, status, "the retired session value is reused")
	require.Equal(t, "invalid_session", out["error"])
	status, out = other.challenge(map[string]any{"auth_session": next, "acr_values": acrMFA})
	require.Equal(t, http.StatusBadRequest, status, "the new session with another key")
	require.Equal(t, "invalid_session", out["error"])
	status, out = r.challenge(map[string]any{"auth_session": next, "acr_values": acrMFA})
	require.Equal(t, http.StatusUnauthorized, status, "the new session steps up")
	require.Contains(t, out["challenges"], "SMSOTP")
	require.NotContains(t, out["challenges"], "UserLogin", "only the missing factor is asked")
}

type refusingCheck struct{}

func (refusingCheck) Name() string { return "AppBan" }

func (refusingCheck) Authorize(context.Context, *auth.CheckRequest) (auth.CheckResult, error) {
	return auth.CheckResult{Status: auth.CheckRefused, Reason: "app_banned"}, nil
}

// The mandatory checks (the application scope) run for every
// authorization, even of a scope mapped to no check.
func TestMandatoryChecksRunForEveryAuthorization(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	calls := h.app.calls
	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "public"})
	require.Equal(t, http.StatusOK, status, out)
	require.Greater(t, h.app.calls, calls, "the mandatory check ran")

	h = newHarness(t, func(c *auth.Config) {
		c.Checks = append(c.Checks, refusingCheck{})
		c.MandatoryChecks = append(c.MandatoryChecks, "AppBan")
	})
	r = h.raw()
	r.register()
	for _, scope := range []string{"public", "reservations"} {
		status, out = r.challenge(map[string]any{"client_id": r.id, "scope": scope})
		require.Equal(t, http.StatusForbidden, status, scope)
		require.Equal(t, "access_denied", out["error"], scope)
		require.Equal(t, "AppBan", out["check"], scope)
	}
}

// Scope rules per app and per channel: the most specific rule wins (app
// and channel, then app, then channel, then neither).
func TestScopeRulesPerAppAndChannel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) {
		c.Scopes = append(c.Scopes,
			auth.ScopeRule{Scope: "reservations", Channel: "watch", Checks: []string{"AppCheck"}},
			auth.ScopeRule{Scope: "reservations", AppID: "com.example.kiosk", Checks: []string{"UserLogin", "SMSOTP"}},
		)
	})
	registerAs := func(appID, channel string) *raw {
		r := h.raw()
		b := r.registration()
		b["app_id"], b["channel"] = appID, channel
		status, out, _ := r.do("POST", "/oauth/register", b, "application/json",
			map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
		require.Equal(t, http.StatusCreated, status, out)
		r.id = out["client_id"].(string)
		return r
	}
	firstChallenge := func(r *raw) (int, map[string]any) {
		return r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	}

	status, out := firstChallenge(registerAs("com.example.travel", "phone"))
	require.Equal(t, http.StatusUnauthorized, status, "the general rule: the password")
	require.Contains(t, out["challenges"], "UserLogin")

	status, out = firstChallenge(registerAs("com.example.travel", "watch"))
	require.Equal(t, http.StatusOK, status, "the watch rule: the application check only")

	for _, channel := range []string{"phone", "watch"} {
		kiosk := registerAs("com.example.kiosk", channel)
		status, out = firstChallenge(kiosk)
		require.Equal(t, http.StatusUnauthorized, status, channel)
		require.Contains(t, out["challenges"], "UserLogin", "the app's rule beats the channel's (%s)", channel)
		status, out = kiosk.challenge(map[string]any{"auth_session": out["auth_session"],
			"answers": map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "correct horse"}}})
		require.Equal(t, http.StatusUnauthorized, status)
		require.Contains(t, out["challenges"], "SMSOTP", "the app's rule maps to two checks (%s)", channel)
	}
}

// The endpoints live under a configurable prefix, found through discovery.
func TestCustomPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.Prefix = "/auth/v1" })
	c := h.newClient("d-prefix", "alice", "correct horse")
	require.NoError(t, c.Authorize(context.Background(), "reservations"))
	resp, err := h.get(c, "/reservations/1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	status, _, _ := h.raw().do("POST", "/oauth/nonce", nil, "", nil)
	require.Equal(t, http.StatusNotFound, status, "nothing under the default prefix")
	_, err = auth.NewServer(auth.Config{Issuer: "https://a.example", Prefix: "oauth/", Store: kv.NewMemory(kv.MemoryConfig{}),
		Clients: auth.NewMemoryClients(), Keys: h.keys, RegistrationPolicy: auth.InsecureAcceptAllRegistrations})
	require.ErrorIs(t, err, auth.ErrInvalidConfiguration)
}

// Access tokens signed with EdDSA validate; after a rotation new tokens
// use the new key, tokens of the previous key still validate, and the JWKS
// serves both.
func TestEdDSATokensAndRotation(t *testing.T) {
	t.Parallel()
	ed, err := auth.GenerateSigningKey(auth.AlgEdDSA)
	require.NoError(t, err)
	ks, err := auth.NewKeySet(ed, 1)
	require.NoError(t, err)
	h := newHarness(t, func(c *auth.Config) { c.Keys = ks })
	r := h.raw()
	r.register()
	alg := func(tok string) string {
		var hdr struct{ Alg, Kid string }
		b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &hdr))
		return hdr.Alg
	}
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	old := tok["access_token"].(string)
	require.Equal(t, auth.AlgEdDSA, alg(old))
	_, err = h.srv.Validator().Validate(old)
	require.NoError(t, err)

	es, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	require.NoError(t, ks.Rotate(es))
	status, tok := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, status, tok)
	require.Equal(t, auth.AlgES256, alg(tok["access_token"].(string)))
	_, err = h.srv.Validator().Validate(old)
	require.NoError(t, err, "a token of the previous key still validates")
	status, out, _ := r.do("GET", "/reservations/1", nil, "", map[string]string{"Authorization": "DPoP " + old, "DPoP": r.proof("GET", "/reservations/1", old)})
	require.Equal(t, http.StatusOK, status, out)
	_, jwks, _ := r.do("GET", "/oauth/jwks", nil, "", nil)
	require.Len(t, jwks["keys"], 2, "current and previous keys")
}

// With RequireDPoPNonce, every proof must carry the server's nonce: a proof
// without one is answered use_dpop_nonce with a DPoP-Nonce header, at the
// server's endpoints and on resources, and the client retries with it.
func TestDPoPServerNonce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.RequireDPoPNonce = true })
	r := h.raw()
	status, out, hdr := r.do("POST", "/oauth/register", r.registration(), "application/json",
		map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "use_dpop_nonce", out["error"])
	require.NotEmpty(t, hdr.Get("DPoP-Nonce"))

	c := h.newClient("d-nonce", "alice", "correct horse")
	require.NoError(t, c.Authorize(context.Background(), "reservations"))
	resp, err := h.get(c, "/reservations/1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	at := c.AccessToken()
	status, out, hdr = r.do("GET", "/reservations/1", nil, "", map[string]string{"Authorization": "DPoP " + at, "DPoP": r.proof("GET", "/reservations/1", at)})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "use_dpop_nonce", out["error"])
	require.NotEmpty(t, hdr.Get("DPoP-Nonce"))
	require.Contains(t, hdr.Get("WWW-Authenticate"), `error="use_dpop_nonce"`)
}

// failingClients fails every call once broken is set.
type failingClients struct {
	auth.ClientStore
	broken atomic.Bool
}

func (f *failingClients) CreateClient(ctx context.Context, c *auth.Client) error {
	if f.broken.Load() {
		return errStoreDown
	}
	return f.ClientStore.CreateClient(ctx, c)
}

func (f *failingClients) Client(ctx context.Context, id string) (*auth.Client, error) {
	if f.broken.Load() {
		return nil, errStoreDown
	}
	return f.ClientStore.Client(ctx, id)
}

// A client store failure is answered 503, never a pass.
func TestClientStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	fc := &failingClients{}
	h := newHarness(t, func(c *auth.Config) {
		fc.ClientStore = c.Clients
		c.Clients = fc
	})
	r := h.raw()
	r.register()
	code := r.code("reservations")
	reg := r.registration()
	fc.broken.Store(true)

	status, out, _ := r.do("POST", "/oauth/register", reg, "application/json", map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
	require.Equal(t, http.StatusServiceUnavailable, status, out)
	status, out = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	require.Equal(t, http.StatusServiceUnavailable, status, out)
	status, out = r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	require.Equal(t, http.StatusServiceUnavailable, status, out)
	require.Equal(t, "temporarily_unavailable", out["error"])
	req, err := http.NewRequest("POST", h.issuer()+"/oauth/introspect", strings.NewReader("token=x"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("introspector", "introspector-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp.Body.Close()
}

// Resource.Check is the middleware's twin for callers outside HTTP
// middleware: a principal, a *ResourceError to answer, or a store error.
func TestResourceCheckTwin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	at := tok["access_token"].(string)
	req := func(proof bool) *http.Request {
		q, err := http.NewRequest("GET", h.issuer()+"/reservations/3", nil)
		require.NoError(t, err)
		q.Header.Set("Authorization", "DPoP "+at)
		if proof {
			q.Header.Set("DPoP", r.proof("GET", "/reservations/3", at))
		}
		return q
	}
	p, err := h.res.Check(req(true), "reservations")
	require.NoError(t, err)
	require.Equal(t, "alice", p.Subject)
	require.Equal(t, r.id, p.ClientID)

	var re *auth.ResourceError
	_, err = h.res.Check(req(true), "reservations", "reports")
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusForbidden, re.Status)
	require.Equal(t, auth.CodeInsufficientScope, re.Code)

	_, err = h.res.Check(req(false))
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusUnauthorized, re.Status)
	require.Equal(t, auth.CodeInvalidDPoPProof, re.Code)

	q := req(true)
	h.store.setBroken(true)
	defer h.store.setBroken(false)
	_, err = h.res.Check(q)
	require.Error(t, err)
	require.False(t, errors.As(err, &re), "a store failure is not a refusal: the caller answers 503")
}

// bothPolicy is a registration policy that is also a client policy.
type bothPolicy struct{ refuse atomic.Bool }

func (p *bothPolicy) AllowRegistration(context.Context, *auth.Registration, *auth.Client) error {
	return nil
}

func (p *bothPolicy) AllowClient(context.Context, *auth.Client) error {
	if p.refuse.Load() {
		return &auth.Refusal{Code: "device_blocked", Description: "no longer allowed"}
	}
	return nil
}

// A registration policy that also implements ClientPolicy is asked again
// at every refresh when Config.ClientPolicy is nil.
func TestRegistrationPolicyReRunAtRefresh(t *testing.T) {
	t.Parallel()
	p := &bothPolicy{}
	h := newHarness(t, func(c *auth.Config) { c.RegistrationPolicy, c.ClientPolicy = p, nil })
	r := h.raw()
	r.register()
	_, tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {r.code("reservations")}})
	p.refuse.Store(true)
	status, out := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "device_blocked", out["error"])
	status, _ = r.challenge(map[string]any{"client_id": r.id, "scope": "reservations"})
	require.Equal(t, http.StatusForbidden, status, "nor sign in again")
}

// sessionCheck challenges once per session and records the SessionID of
// every call.
type sessionCheck struct {
	mu  sync.Mutex
	ids []string
}

func (c *sessionCheck) Name() string { return "PerSession" }

func (c *sessionCheck) Authorize(_ context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, req.SessionID)
	if req.Answer == nil {
		return auth.CheckResult{Status: auth.CheckChallenge}, nil
	}
	return auth.CheckResult{Status: auth.CheckSuccess, AMR: []string{"otp"}, ValidFor: time.Minute}, nil
}

// Every check of one auth session sees the same, non-empty SessionID,
// the first call of a new session too (a check that keeps a pending
// challenge per session, like the SMS check, depends on it).
func TestCheckRequestSessionID(t *testing.T) {
	t.Parallel()
	sc := &sessionCheck{}
	h := newHarness(t, func(c *auth.Config) {
		c.Checks = append(c.Checks, sc)
		c.Scopes = append(c.Scopes, auth.ScopeRule{Scope: "otp", Checks: []string{"PerSession"}})
	})
	r := h.raw()
	r.register()
	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": "otp"})
	require.Equal(t, http.StatusUnauthorized, status, out)
	status, out = r.challenge(map[string]any{"auth_session": out["auth_session"], "answers": map[string]any{"PerSession": map[string]any{}}})
	require.Equal(t, http.StatusOK, status, out)
	h.clock.Advance(2 * time.Minute) // the check's success has ended
	status, out = r.challenge(map[string]any{"client_id": r.id, "scope": "public otp"})
	require.Equal(t, http.StatusUnauthorized, status, out)
	require.Len(t, sc.ids, 3)
	require.NotEmpty(t, sc.ids[0], "the first call of a new session has the session's id")
	require.Equal(t, sc.ids[0], sc.ids[1], "stable across the session's requests")
	require.NotEqual(t, sc.ids[0], sc.ids[2], "another session, another id")
	require.NotEmpty(t, sc.ids[2])
}
