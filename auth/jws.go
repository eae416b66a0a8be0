package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/moatsec/moat/internal/strictjson"
)

// Algorithms moat signs and verifies with. Anything else is refused.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// compactJWS is a JWS in compact serialization whose signature has not been
// verified yet.
//
// moat verifies its own access tokens and DPoP proofs with this small
// parser on top of the standard library instead of go-jose's general JWS
// parser: go-jose's parsing costs about 40% of an ECDSA verification, and
// the budget for the whole check is 10%. The parser is strict (one
// serialization, canonical base64url, no "crit", allow-listed algorithms
// only), and its fuzz target checks it against go-jose on every input.
// go-jose still parses JWKs, signs tokens and serves JWKS.
type compactJWS struct {
	header       jwsHeader
	rawHeader    string // the first segment, base64url
	signingInput string // first two segments with their dot
	payload      []byte
	signature    []byte
}

var headerNames = strictjson.FieldNames(jwsHeader{})

type jwsHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	JWK  json.RawMessage `json:"jwk"`
}

var b64 = base64.RawURLEncoding.Strict()

// parseCompactJWS splits and decodes a compact JWS of at most maxSize bytes.
func parseCompactJWS(token string, maxSize int) (*compactJWS, error) {
	if len(token) > maxSize {
		return nil, ErrTokenTooLarge
	}
	i := strings.IndexByte(token, '.')
	if i < 0 {
		return nil, fmt.Errorf("%w: not three segments", ErrMalformedToken)
	}
	j := strings.IndexByte(token[i+1:], '.')
	if j < 0 {
		return nil, fmt.Errorf("%w: not three segments", ErrMalformedToken)
	}
	j += i + 1
	if strings.IndexByte(token[j+1:], '.') >= 0 {
		return nil, fmt.Errorf("%w: not three segments", ErrMalformedToken)
	}
	h, p, s := token[:i], token[i+1:j], token[j+1:]
	if h == "" || p == "" || s == "" {
		return nil, fmt.Errorf("%w: empty segment", ErrMalformedToken)
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformedToken)
	}
	jws := &compactJWS{rawHeader: h, signingInput: token[:j]}
	// JOSE member names are case-sensitive; encoding/json's are not.
	if err := strictjson.Check(hb, headerNames); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformedToken, err)
	}
	if err := json.Unmarshal(hb, &jws.header); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformedToken)
	}
	if jws.header.Alg == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrMalformedToken)
	}
	if len(jws.header.Crit) != 0 {
		return nil, fmt.Errorf("%w: unsupported critical header", ErrMalformedToken)
	}
	if jws.payload, err = b64.DecodeString(p); err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformedToken)
	}
	if jws.signature, err = b64.DecodeString(s); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformedToken)
	}
	return jws, nil
}

// verify checks the signature with key, which must suit alg. The caller
// has already checked alg against its allow-list.
func (j *compactJWS) verify(alg string, key any) error {
	if j.header.Alg != alg {
		return ErrAlgorithmNotAllowed
	}
	switch alg {
	case AlgES256:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return ErrUnsupportedKey
		}
		if len(j.signature) != 64 {
			return ErrBadSignature
		}
		sum := sha256.Sum256([]byte(j.signingInput))
		r := new(big.Int).SetBytes(j.signature[:32])
		s := new(big.Int).SetBytes(j.signature[32:])
		if !ecdsa.Verify(pub, sum[:], r, s) {
			return ErrBadSignature
		}
		return nil
	case AlgEdDSA:
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return ErrUnsupportedKey
		}
		if !ed25519.Verify(pub, []byte(j.signingInput), j.signature) {
			return ErrBadSignature
		}
		return nil
	}
	return ErrAlgorithmNotAllowed
}

// checkAlgorithms validates an allow-list of algorithms given in a config.
func checkAlgorithms(algs []string) error {
	if len(algs) == 0 {
		return fmt.Errorf("%w: allowed algorithms are required", ErrInvalidConfiguration)
	}
	for _, a := range algs {
		if a != AlgES256 && a != AlgEdDSA {
			return fmt.Errorf("%w: algorithm %q is not supported (ES256, EdDSA)", ErrInvalidConfiguration, a)
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// algorithmFor returns the JWS algorithm for a public key, or "".
func algorithmFor(key any) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return AlgES256
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return AlgEdDSA
		}
	}
	return ""
}
