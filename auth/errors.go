package auth

import "errors"

// Token and proof validation errors. Validation reports the most serious
// failure: a bad signature is never reported as an expiry, and no claims are
// returned from a token whose signature failed.
var (
	ErrTokenTooLarge        = errors.New("moat/auth: token too large")
	ErrMalformedToken       = errors.New("moat/auth: malformed token")
	ErrAlgorithmNotAllowed  = errors.New("moat/auth: signature algorithm not allowed")
	ErrUnknownKey           = errors.New("moat/auth: unknown signing key")
	ErrBadSignature         = errors.New("moat/auth: signature verification failed")
	ErrWrongTokenType       = errors.New("moat/auth: wrong token type")
	ErrWrongIssuer          = errors.New("moat/auth: wrong issuer")
	ErrWrongAudience        = errors.New("moat/auth: wrong audience")
	ErrTokenExpired         = errors.New("moat/auth: token expired")
	ErrTokenNotYetValid     = errors.New("moat/auth: token not yet valid")
	ErrTokenRevoked         = errors.New("moat/auth: token revoked")
	ErrMissingClaim         = errors.New("moat/auth: required claim missing")
	ErrUnsupportedKey       = errors.New("moat/auth: unsupported key type")
	ErrInvalidDPoPProof     = errors.New("moat/auth: invalid DPoP proof")
	ErrDPoPReplay           = errors.New("moat/auth: DPoP proof replayed")
	ErrDPoPNonce            = errors.New("moat/auth: DPoP nonce missing or stale")
	ErrKeyMismatch          = errors.New("moat/auth: proof key does not match the token's key")
	ErrNotFound             = errors.New("moat/auth: not found")
	ErrClientExists         = errors.New("moat/auth: client id already registered")
	ErrInvalidConfiguration = errors.New("moat/auth: invalid configuration")
)
