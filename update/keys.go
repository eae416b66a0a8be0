package update

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Signature algorithms a root may name for its keys. Ed25519 keys sign with
// EdDSA, P-256 keys with ES256; nothing else is accepted.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
)

// GenerateKey makes a new signing key for alg ([EdDSA] or [ES256]) with
// crypto/rand.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("moat/update: unsupported key algorithm %q (want %s or %s)", alg, EdDSA, ES256)
}

// MarshalPrivateKey encodes a signing key as a private JWK (RFC 7517) with
// its key id. The result is a secret: store it with mode 0600.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	kid, err := KeyID(k.Public())
	if err != nil {
		return nil, err
	}
	if _, err := algorithmFor(k.Public()); err != nil {
		return nil, err
	}
	return json.MarshalIndent(jose.JSONWebKey{Key: k, KeyID: kid}, "", "  ")
}

// ParsePrivateKey decodes a private JWK written by [MarshalPrivateKey]. Only
// Ed25519 and P-256 keys are accepted.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, malformed("private key is not a JWK")
	}
	switch k := jwk.Key.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, malformed("ECDSA key is not on P-256")
		}
		return k, nil
	}
	return nil, malformed("private key is not an Ed25519 or P-256 private key")
}

// PublicKeyOf returns the public JWK of a signing key, with its key id set,
// ready to list in a [Root].
func PublicKeyOf(k crypto.Signer) (jose.JSONWebKey, error) {
	kid, err := KeyID(k.Public())
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jose.JSONWebKey{Key: k.Public(), KeyID: kid}, nil
}

// KeyID returns a public key's id: the unpadded base64url RFC 7638 JWK
// thumbprint (SHA-256). Only Ed25519 and P-256 keys have one.
func KeyID(pub crypto.PublicKey) (string, error) {
	if _, err := algorithmFor(pub); err != nil {
		return "", err
	}
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", malformed("cannot compute the key thumbprint")
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// algorithmFor returns the one signature algorithm a public key may use.
func algorithmFor(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return jose.EdDSA, nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	}
	return "", malformed("key is not an Ed25519 or P-256 public key")
}

// publicJWK is the strict wire form of a public key in a root document.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
}

// encodePublicJWK returns the wire form of pub.
func encodePublicJWK(pub crypto.PublicKey) (publicJWK, error) {
	kid, err := KeyID(pub)
	if err != nil {
		return publicJWK{}, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return publicJWK{Kty: "OKP", Crv: "Ed25519", X: b64(k), Kid: kid}, nil
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			return publicJWK{}, malformed("invalid P-256 key")
		}
		return publicJWK{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:]), Kid: kid}, nil
	}
	return publicJWK{}, malformed("unsupported key type")
}

// decode returns the key a wire JWK describes, after checking its kid is
// its thumbprint.
func (j publicJWK) decode() (crypto.PublicKey, error) {
	dec := func(s string, n int) ([]byte, error) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != n {
			return nil, malformed("key coordinate is not %d bytes of base64url", n)
		}
		return b, nil
	}
	var pub crypto.PublicKey
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519" && j.Y == "":
		x, err := dec(j.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		pub = ed25519.PublicKey(x)
	case j.Kty == "EC" && j.Crv == "P-256":
		x, err := dec(j.X, 32)
		if err != nil {
			return nil, err
		}
		y, err := dec(j.Y, 32)
		if err != nil {
			return nil, err
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, malformed("P-256 point is not on the curve")
		}
		pub = k
	default:
		return nil, malformed("key must be an OKP Ed25519 or EC P-256 JWK")
	}
	kid, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	if kid != j.Kid {
		return nil, malformed("key id is not the key's RFC 7638 thumbprint")
	}
	return pub, nil
}

// sha256Hex is the lowercase hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:])
}
