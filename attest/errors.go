package attest

import (
	"errors"
	"fmt"
	"strings"
)

// OAuth-style error codes carried by [Error]. The registration endpoint
// answers with them (RFC 6749 error bodies).
const (
	// CodeInvalidAttestation: an attestation was sent and refused.
	CodeInvalidAttestation = "invalid_attestation"
	// CodeAttestationRequired: the policy requires an attestation and the
	// request carried none.
	CodeAttestationRequired = "attestation_required"
)

// Reasons a verifier refuses. Each is wrapped in an [*Error]; test with
// errors.Is. Their text names the failed check and never carries secrets.
var (
	// ErrMalformed reports evidence that does not parse: bad base64, CBOR,
	// DER, JSON or JWE/JWS structure, missing fields.
	ErrMalformed = errors.New("moat/attest: malformed attestation")
	// ErrUnknownFormat reports a format no configured verifier accepts.
	ErrUnknownFormat = errors.New("moat/attest: attestation format not accepted")
	// ErrCertificateExpired reports a certificate of the chain that is not
	// valid at the verification time (expired or not yet valid).
	ErrCertificateExpired = errors.New("moat/attest: certificate not valid at verification time")
	// ErrChain reports a certificate chain that does not verify: a bad
	// signature, an issuer name that does not match its parent, a
	// certificate that may not sign others.
	ErrChain = errors.New("moat/attest: certificate chain does not verify")
	// ErrUnknownRoot reports a chain that does not end at a trusted root.
	ErrUnknownRoot = errors.New("moat/attest: certificate chain ends at an untrusted root")
	// ErrRevoked reports a certificate listed as revoked or suspended.
	ErrRevoked = errors.New("moat/attest: certificate revoked")
	// ErrNonceMismatch reports an App Attest (or WebAuthn "apple")
	// certificate nonce that is not SHA-256(authData || clientDataHash):
	// the attestation is not for this challenge.
	ErrNonceMismatch = errors.New("moat/attest: nonce mismatch")
	// ErrChallengeMismatch reports an attestation challenge, Play Integrity
	// nonce or request hash, or WebAuthn challenge that is not the expected one.
	ErrChallengeMismatch = errors.New("moat/attest: challenge mismatch")
	// ErrKeyIDMismatch reports an App Attest key id that is not SHA-256 of
	// the attested public key, or a credential id that is not the key id.
	ErrKeyIDMismatch = errors.New("moat/attest: key id mismatch")
	// ErrAppIDMismatch reports an rpIdHash that is not SHA-256 of an
	// accepted app id (or WebAuthn RP id).
	ErrAppIDMismatch = errors.New("moat/attest: app id mismatch")
	// ErrEnvironment reports an App Attest aaguid for an environment the
	// verifier does not accept, or an unknown aaguid.
	ErrEnvironment = errors.New("moat/attest: environment not accepted")
	// ErrCounter reports an App Attest attestation counter that is not 0,
	// or an assertion counter not greater than the stored one (a replay).
	ErrCounter = errors.New("moat/attest: counter not accepted")
	// ErrSignature reports a signature that does not verify.
	ErrSignature = errors.New("moat/attest: signature does not verify")
	// ErrAlgorithm reports a signature algorithm that is unknown or not
	// accepted (SHA-1 unless explicitly allowed).
	ErrAlgorithm = errors.New("moat/attest: signature algorithm not accepted")
	// ErrSecurityLevel reports an Android key attested below the minimum
	// security level.
	ErrSecurityLevel = errors.New("moat/attest: security level too low")
	// ErrRootOfTrust reports an Android device whose boot is not verified
	// or whose bootloader is unlocked.
	ErrRootOfTrust = errors.New("moat/attest: device root of trust not accepted")
	// ErrPackage reports an app (package name, signing certificate digest)
	// that is not an accepted one.
	ErrPackage = errors.New("moat/attest: app package not accepted")
	// ErrStale reports a Play Integrity verdict older than the allowed age
	// or from the future.
	ErrStale = errors.New("moat/attest: verdict too old")
	// ErrAppNotRecognized reports a Play Integrity app recognition verdict
	// other than PLAY_RECOGNIZED.
	ErrAppNotRecognized = errors.New("moat/attest: app not recognized by Play")
	// ErrDeviceIntegrity reports Play Integrity device verdicts below policy.
	ErrDeviceIntegrity = errors.New("moat/attest: device integrity below policy")
	// ErrReplay reports a Play Integrity nonce or request hash, or a
	// challenge, that was already used.
	ErrReplay = errors.New("moat/attest: challenge already used")
	// ErrChallengeInvalid reports a challenge that was never issued, has
	// expired or was already consumed.
	ErrChallengeInvalid = errors.New("moat/attest: challenge unknown, expired or already used")
	// ErrKeyBinding reports development evidence whose key is not the
	// client's key (thumbprint mismatch).
	ErrKeyBinding = errors.New("moat/attest: attested key is not the client's key")
	// ErrWebAuthn reports a WebAuthn registration whose client data or
	// authenticator data does not meet the expectations (type, origin,
	// flags, credential id, statement requirements).
	ErrWebAuthn = errors.New("moat/attest: WebAuthn registration not accepted")
	// ErrAttestationRequired reports a registration without attestation
	// where the policy requires one.
	ErrAttestationRequired = errors.New("moat/attest: attestation required")
	// ErrNoRule reports a registration for an app and platform no policy
	// rule covers. The policy fails closed.
	ErrNoRule = errors.New("moat/attest: no attestation rule for this app and platform")
	// ErrUnknownKey reports an App Attest assertion for a key id that was
	// never attested here.
	ErrUnknownKey = errors.New("moat/attest: unknown App Attest key")
	// ErrKeyExists reports an App Attest key id attested a second time.
	ErrKeyExists = errors.New("moat/attest: App Attest key already registered")
)

// Errors of the [KeyStore] contract. They are not refusals: the store
// implementation returns them and the verifiers translate them.
var (
	// ErrNotFound reports a key id the store does not hold.
	ErrNotFound = errors.New("moat/attest: key not found")
	// ErrCounterConflict reports an UpdateCounter whose expected counter is
	// not the stored one (another request updated it first).
	ErrCounterConflict = errors.New("moat/attest: counter changed concurrently")
)

// Error is a refusal: the evidence was understood (or is missing) and the
// answer is no. Any other error from this package means "could not decide"
// (a store failure, a cancelled context) and should be answered with 503.
//
// Code is what the client is told (see [CodeInvalidAttestation]);
// Description is a short, fixed text naming the failed check, safe to send
// to the client. Error() adds details for logs (which certificate, which
// value was expected); it never contains secrets.
type Error struct {
	// Code is CodeInvalidAttestation or CodeAttestationRequired.
	Code string
	// Reason is one of the ErrXxx sentinels of this package.
	Reason error
	// Detail says more for the operator's log; may be empty.
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns Reason, so errors.Is(err, ErrNonceMismatch) works.
func (e *Error) Unwrap() error { return e.Reason }

// Description is the reason without details, for the client.
func (e *Error) Description() string {
	return strings.TrimPrefix(e.Reason.Error(), "moat/attest: ")
}

// refuse returns an invalid_attestation refusal for reason.
func refuse(reason error, format string, a ...any) *Error {
	return &Error{Code: CodeInvalidAttestation, Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// IsRefusal reports whether err is a refusal (an [*Error]) rather than a
// failure to decide.
func IsRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
