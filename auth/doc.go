// Package auth is moat's authorization server for first-party mobile apps
// and the resource-side middleware that protects an API with its tokens.
//
// # The path most users want
//
// Most users do not call this package directly: moat.Stack builds a
// [Server] and a [Resource] from one configuration. Used alone:
//
//	srv, err := auth.NewServer(auth.Config{
//		Issuer: "https://api.example.com",
//		Store: kv.NewMemory(kv.MemoryConfig{}), Clients: auth.NewMemoryClients(), Keys: keys,
//		Checks: []auth.Check{passwordCheck, smsCheck},
//		Scopes: []auth.ScopeRule{{Scope: "reservations", Checks: []string{"UserLogin"}}},
//		RegistrationPolicy: policy,
//	})
//	res, err := auth.NewResource(auth.ResourceConfig{
//		Validator: srv.Validator(), DPoP: srv.DPoP(), Store: srv.Store(),
//		Origin: "https://api.example.com",
//	})
//	srv.Mount(mux)
//	mux.Handle("GET /reservations/{id}", res.Require("reservations")(handler))
//
// A handler reads who called with [PrincipalFrom].
//
// # Protocol
//
//   - Registration (POST <prefix>/register, JSON): app id, version,
//     platform, channel, device id, the client's P-256 public JWK, a
//     single-use server nonce (GET or POST <prefix>/nonce) and an optional
//     attestation object. The request carries a DPoP proof signed by the key
//     being registered. Platform and channel, which choose the version and
//     attestation policies, are lower-case names (a-z 0-9 . _ -), so that
//     "Android " cannot slip past the rules for "android". The
//     [RegistrationPolicy] decides; a [Refusal] is answered with its status
//     and error code. The answer carries the client_id.
//   - Authorization Challenge Endpoint (POST <prefix>/authorize-challenge,
//     JSON), after draft-ietf-oauth-first-party-apps-04: the first request
//     has client_id, scope, and optionally acr_values and max_age; follow-ups
//     have auth_session and answers keyed by check name. The server runs the
//     mandatory checks, the checks each scope element maps to ([ScopeRule],
//     per app and channel), and those each acr value maps to ([ACR]), in
//     that order, skipping checks whose success still holds (within max_age,
//     when given). Answers: 200 {"authorization_code"}, 401
//     insufficient_authorization with auth_session and challenges, 403
//     check_blocked (with blocked_until and Retry-After) or access_denied,
//     400 invalid_session for an unknown, expired or foreign session. Moat
//     takes JSON bodies here, where the draft uses form encoding.
//   - Token endpoint (POST <prefix>/token, form): authorization_code
//     (single use, 60 s at most), refresh_token (rotating; presenting a used
//     refresh token revokes its whole family), client_credentials
//     (confidential clients, Bearer tokens). The answer is RFC 6749's plus
//     auth_session, which the client keeps for step-up. A refresh runs the
//     client policy and the mandatory checks again and needs the successes
//     of the checks that granted the token: otherwise 401
//     insufficient_authorization.
//   - Access tokens are RFC 9068 JWTs (typ at+jwt), ES256 or EdDSA, with
//     iss, sub, aud, exp, iat, jti, client_id, scope, acr, amr, auth_time,
//     cnf.jkt, the app context (app_id, app_version, platform, channel,
//     device_id) and amr_at (when each amr method last succeeded, for
//     per-factor max age). Their lifetime is the smaller of AccessTokenTTL
//     and the earliest expiry of the checks' successes that granted them.
//   - DPoP (RFC 9449) on every request of a public client: [DPoPVerifier]
//     checks typ, the algorithm allow-list, that jwk is a public key suiting
//     alg, the signature, htm, htu (normalized, query ignored), iat within a
//     window, ath on resource requests, an optional server nonce, and that
//     the jti was never seen (kv, atomic). Tokens, codes, refresh tokens
//     and auth sessions are bound to the key's thumbprint.
//   - RFC 8414 metadata at /.well-known/oauth-authorization-server, JWKS
//     (current and previous keys, [KeySet]), RFC 7662 introspection for
//     confidential clients with [IntrospectScope] (a token is inactive as
//     soon as its device or app version is refused), RFC 7009 revocation,
//     and logout (which also ends the SSO group's sign-in).
//
// # Security properties
//
//   - Validation names its allowed algorithms, issuer and audience; keys
//     come only from a [KeySource], never from a token's jwk, jku, x5u or
//     x5c headers, and validation makes no network call. alg "none", HMAC
//     algorithms and a kid naming a key of another algorithm are refused.
//     The signature is checked before any claim: a forged token is reported
//     as such and yields no claims. Tokens over MaxTokenSize (8 KiB by
//     default) are refused before any decoding.
//   - A stolen token is useless without the client's private key; a stolen
//     proof cannot be replayed (jti cache shared by every instance through
//     kv.Store) or used for another method, URL or token.
//   - Every store failure is answered 503 temporarily_unavailable, never let
//     through; the internal error goes to the log only. Errors and events
//     never carry tokens, codes, answers or session values.
//   - Session values, codes and refresh tokens are 256-bit random values;
//     the store keeps only their SHA-256.
//
// Limits: access tokens already issued stay valid until they expire (at
// most AccessTokenTTL, 10 minutes by default) after a logout or a refresh
// family revocation, unless revoked one by one; device blocks take effect
// at once through the device stage of moat.Stack, not here. The registration
// nonce endpoint is not rate-limited by this package.
//
// # Performance
//
// BenchmarkProtectedRequest (bench_test.go) measures one request through
// [Resource.Require] against the floor of one ECDSA P-256 verification in
// the same run: floor-ecdsa-p256, bare-handler, bearer-cached,
// dpop-cached-token and bearer-uncached. The targets are dpop-cached-token
// and bearer-uncached within 1.10× the floor, and bearer-cached within
// 1 µs and 3 allocations of bare-handler. Measured (go test -bench
// BenchmarkProtectedRequest -benchtime 2s -count 3, three sessions, on the
// project's 2-core AMD EPYC, Go 1.26; the machine's speed drifts by 10-20%
// between sub-benchmarks, so the ratios move from run to run):
//
//	floor-ecdsa-p256   48-63 µs     11 allocs
//	bare-handler       2.3-2.9 ns    0 allocs
//	bearer-cached      0.79-0.94 µs  2 allocs (368 B): within 1 µs of bare-handler
//	dpop-cached-token  57-79 µs     61 allocs: 1.05-1.2× the floor
//	bearer-uncached    60-80 µs     68 allocs: 1.07-1.3× the floor
//
// The 1.10× target is met in some runs and not in others. A CPU profile of
// bearer-uncached puts about 83% of the time in the signature check; the
// rest is decoding the claims with encoding/json (about 6%), the token
// cache and header handling (about 5%) and parsing the compact JWS (2%).
// A DPoP proof costs one more ECDSA verification, which the token cache
// cannot save, plus its jti's single-use write to the kv store.
//
// To keep within 10% of that floor, this package verifies compact JWS with
// a small strict parser on the standard library's crypto instead of
// go-jose's general parser (whose parsing alone costs about 40% of a
// verification); a fuzz target checks the parser against go-jose.
// go-jose still parses JWKs, signs tokens and serves the JWKS.
package auth
