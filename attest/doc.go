// Package attest verifies that a client is a genuine, unmodified build of
// your app on a genuine device, using the platforms' own attestations,
// offline: Apple App Attest (attestations and assertions), Android Key
// Attestation, and Google Play Integrity verdicts. No network call is made
// on the request path. It also verifies WebAuthn registration statements
// (packed, fido-u2f, apple, android-key, tpm) for web clients and tooling.
//
// # Main path: attestation at registration
//
// The backbone's registration endpoint hands each registration to a
// [Policy] (the root package adapts it to auth.RegistrationPolicy):
//
//	keys := attest.NewMemoryKeyStore() // a durable KeyStore in production
//	ios, _ := attest.NewAppAttest(attest.AppAttestConfig{
//		AppIDs: []string{"ABCDE12345.com.example.travel"},
//		Roots: []*x509.Certificate{attest.AppleAppAttestationRoot()},
//		Environments: []attest.Environment{attest.Production},
//		Keys: keys,
//	})
//	android, _ := attest.NewAndroidKey(attest.AndroidKeyConfig{
//		Roots: attest.GoogleAttestationRoots(),
//		Packages: []attest.AndroidPackage{{Name: "com.example.travel", SignatureDigests: digests}},
//		Revocations: revocations, // attest.LoadRevocationList("status.json")
//	})
//	play, _ := attest.NewPlayIntegrity(attest.PlayIntegrityConfig{
//		PackageName: "com.example.travel", DecryptionKey: decKey, VerificationKey: verKey,
//		CertificateDigests: digests, Replay: kvStore,
//	})
//	policy, _ := attest.NewPolicy(attest.PolicyConfig{
//		Rules: []attest.Rule{
//			{Platform: "ios", Verifiers: []attest.Verifier{ios}},
//			{Platform: "android", Verifiers: []attest.Verifier{android, play}},
//			{Platform: "web", Requirement: attest.Off},
//		},
//		OnResult: func(ctx context.Context, reg *attest.Registration, res *attest.Result, err error) { ... },
//	})
//	res, err := policy.Verify(ctx, attest.Registration{AppID: ..., Platform: ..., Nonce: consumedNonce,
//		KeyThumbprint: jkt, Attestation: req.Attestation})
//
// [Policy.Verify] returns a [*Result] to record on the client
// ([Result.Facts] flattens it; [Result.Insecure] says whether the insecure
// development verifier accepted it), an [*Error] to refuse with (its Code
// is "invalid_attestation" or "attestation_required", its Description a
// short text for the client), or another error when it could not decide
// (a store failure: answer 503). Each [Rule] is [Required] (the zero
// value), [Optional] (absent is accepted, present must verify) or [Off],
// per app and platform; a registration no rule covers is refused.
//
// # The challenge
//
// Every attestation commits to the server nonce of the registration
// (single use, consumed by the endpoint) and to the RFC 7638 thumbprint of
// the client's DPoP key, so the attested app and the key that signs every
// later request are tied together. [Challenge] computes the 32 bytes
//
//	SHA-256( "moat-attest-v1\n" || nonce || "\n" || jkt )
//
// over the UTF-8 bytes of the nonce (as the server sent it) and of the
// base64url thumbprint. Swift:
//
//	let challenge = Data(SHA256.hash(data: Data("moat-attest-v1\n\(nonce)\n\(jkt)".utf8)))
//
// Kotlin:
//
//	val challenge = MessageDigest.getInstance("SHA-256").digest("moat-attest-v1\n$nonce\n$jkt".toByteArray(Charsets.UTF_8))
//
// The app passes it unchanged as App Attest's clientDataHash
// (DCAppAttestService.attestKey), as Android's
// KeyGenParameterSpec.Builder.setAttestationChallenge, and as
// base64url without padding as Play Integrity's requestHash (standard
// API) or nonce (classic API).
//
// # Wire format
//
// The registration request's "attestation" member is one JSON object whose
// "format" member selects the verifier. Binary values are base64 (standard
// or URL alphabet, padded or not):
//
//	{"format": "apple-appattest", "key_id": "<key id>", "attestation": "<attestation object, CBOR>"}
//	{"format": "android-key", "chain": ["<leaf DER>", "<intermediate DER>", ..., "<root DER>"]}
//	{"format": "play-integrity", "token": "<integrity token, compact JWE>"}
//	{"format": "insecure-development", "jwk": {<client public JWK>}, "signature": "<base64url DER ECDSA>"}
//
// For "android-key" the chain is the attested key's certificate chain
// (KeyStore.getCertificateChain), leaf first. For "insecure-development",
// see [InsecureDevelopmentEvidence].
//
// # What each verifier checks, and what it does not
//
// [AppAttest.VerifyAttestation] (Apple's "Validating apps that connect to
// your server" steps): the x5c chain to the configured root at the
// verification time; the certificate nonce extension
// 1.2.840.113635.100.8.2 equals SHA-256(authData || clientDataHash); the
// key id is SHA-256 of the attested key's X9.62 point; rpIdHash is
// SHA-256 of an accepted TEAMID.BUNDLEID; counter 0; aaguid is
// "appattestdevelop" or "appattest" followed by exactly seven zero bytes,
// for an accepted environment; credential id equals key id.
// [AppAttest.Verify] also refuses a key id attested before and stores the
// key with its receipt. It does not: validate the receipt or ask Apple
// for fraud metrics (the receipt is stored for that), check the COSE key
// in authData (the certificate's key is used), or know whether the key was
// revoked by Apple.
//
// [VerifyAppAttestAssertion] and [AppAttest.VerifyAssertion]: the ECDSA
// P-256 signature over SHA-256(authenticatorData || clientDataHash), the
// rpIdHash, and a counter strictly greater than the stored one; the
// KeyStore update is a compare-and-set, so of two requests carrying the
// same assertion only one passes. The caller puts a single-use challenge
// from [Challenges] into the client data and checks it; the verifier
// only sees the client data's hash. Both take clientDataHash as the app
// gave it (a raw challenge, as in Apple's documentation sample, is
// appended as is); [AppAttest.VerifyAttestationClientData] and
// [AppAttest.VerifyAssertionClientData] take the client data itself and
// hash it with SHA-256 ([ClientDataHash]).
//
// [AndroidKey] ([VerifyAndroidKeyChain], then [CheckKeyDescription] and
// the package check): each certificate's issuer name matches the next
// one's subject and its signature verifies with that CA's key; every
// certificate is valid at the verification time; the chain ends at a
// configured root, matched by public key (Google's RSA root key has
// certificates from 2016, 2019 and 2022), or is signed by one; no
// certificate's serial number is on the status list; the leaf's
// KeyDescription parses (DER, tags strictly ascending); the attestation
// challenge matches; attestation and KeyMint security levels are at least
// TEE (or StrongBox, or software if configured); the hardware-enforced
// root of trust says VERIFIED boot and a locked bootloader (unless
// InsecureAllowUnverifiedBoot); the attestation application id names an
// accepted package with an accepted signing-certificate digest. It does
// not: fetch the status list (operators refresh the file with
// [RefreshRevocationFile]), check key purposes, origin, OS or patch
// levels (they are reported in Result.Claims), or require that the
// attested key is the client's DPoP key (reported as
// attested_key_is_client_key; the challenge already binds the two).
//
// [PlayIntegrity]: the token is a compact JWE with A256KW and A256GCM
// only, decrypted with the Play Console decryption key; its payload a
// compact JWS with ES256 only, verified with the Play Console
// verification key; then request and app package names, the request hash
// or nonce against the challenge, the timestamp (at most MaxAge old,
// default five minutes, at most a minute in the future),
// PLAY_RECOGNIZED, a known signing-certificate digest, a version code
// (reported in Result.VersionCode for the app-version policy, which
// judges it: the moat stack hands it to package device), the device
// recognition level (default MEETS_DEVICE_INTEGRITY), and that the
// request hash or nonce was not accepted before (kv.Store). It does not:
// call Google's server-side decode API, check licensing, recent device
// activity, Play Protect or environment details (licensing is reported),
// or accept MEETS_VIRTUAL_INTEGRITY as a device level.
//
// [InsecureDevelopmentVerifier]: the evidence's public key has the
// client's key thumbprint and its ECDSA P-256 signature verifies over
// SHA-256("moat-insecure-development-attestation-v1\n" || challenge). It
// proves possession of the registered key and binding to this nonce,
// and NOTHING about the app or device: any program can make it. It runs
// only when enabled by name, and its results have Verdict
// [VerdictInsecure] ("insecure-development") and the fact insecure=true.
//
// [VerifyWebAuthnRegistration] (W3C WebAuthn Level 2 §7.1 and §8): client
// data type, challenge and origin; rpIdHash, user presence, credential id;
// the statement per format; any x5c chain's links and validity, and
// whether it ends at a configured root (Result.Trusted). SHA-1 statements
// are refused unless InsecureAllowSHA1. It does not check FIDO metadata,
// token binding, extensions or the AIK certificate's subject alternative
// name, and has no ECDAA support.
//
// # Security properties and limits
//
// Verification fails closed: a parse error, an unknown algorithm, a zero
// clock, a store error all refuse (or return an error that is not a
// refusal, for the caller to answer 503). Trusted roots, app ids,
// environments, packages and keys are required configuration; no zero
// value skips a check, and every weakening option is named Insecure....
// Attestation proves what the platform vouches for at attestation time:
// a genuine app and device then. It does not prove the device stays
// uncompromised; App Attest assertions (per request) and Play Integrity
// verdicts (per session) renew that evidence. Attestation ties the app
// to the client key; the key's later use is what DPoP proves.
//
// # Performance
//
// Measured on the project's shared, loaded 2-core machine (go test
// -bench, Go 1.26; absolute figures are pessimistic, ratios hold):
// App Attest attestation 17.0 ms/op, 330 allocs (x509 chain alone 10.2
// ms: 1.7x); assertion 0.77 ms, 16 allocs (bare ECDSA P-256 verify 0.95
// ms, about 1x); Android chain with policy 16.1 ms, 294 allocs (chain
// signatures alone 32.7 ms in the same noisy run, about 1x; KeyDescription
// parse 0.40 ms, 125 allocs); Play Integrity decrypt and verify 0.76 ms,
// 185 allocs (bare ES256 JWS 0.73 ms: 1.04x); a development registration
// through the policy 1.0 ms, 78 allocs (bare ECDSA verify 0.29 ms: 3.6x,
// the JWK thumbprint and JSON decoding). Signature verification dominates
// everything; registration happens once per install.
//
// The command "moat attest verify" and "moat attest assert" run the same
// verifiers from the command line.
package attest
