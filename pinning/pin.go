package pinning

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// pinPrefix names the only digest algorithm moat pins use.
const pinPrefix = "sha256/"

// A Pin is the SHA-256 digest of a certificate's DER-encoded
// SubjectPublicKeyInfo (RFC 7469 §2.4). It pins a key, not a certificate:
// a certificate renewed for the same key keeps its pin. Its text form is
// "sha256/" followed by the standard, padded base64 of the digest, as in
// OkHttp and TrustKit.
type Pin [sha256.Size]byte

// ParsePin parses the text form of a pin. Only "sha256/" pins are
// accepted; anything else is [ErrInvalidPin].
func ParsePin(s string) (Pin, error) {
	var p Pin
	rest, ok := strings.CutPrefix(s, pinPrefix)
	if !ok {
		return p, fmt.Errorf("%w: want the form sha256/BASE64", ErrInvalidPin)
	}
	if len(rest) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return p, fmt.Errorf("%w: the digest must be 44 base64 characters", ErrInvalidPin)
	}
	// 44 characters without padding decode to 33 bytes: Decode needs room
	// for them, and n tells them apart.
	var buf [sha256.Size + 1]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(rest))
	if err != nil || n != sha256.Size {
		return Pin{}, fmt.Errorf("%w: the digest is not valid base64 of 32 bytes", ErrInvalidPin)
	}
	copy(p[:], buf[:n])
	return p, nil
}

// PinOf returns the pin of cert's public key.
func PinOf(cert *x509.Certificate) Pin {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// PinOfPublicKey returns the pin of a public key of a type x509 can
// marshal (*ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey...). It is
// the pin any certificate later issued for that key will have.
func PinOfPublicKey(pub crypto.PublicKey) (Pin, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Pin{}, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return sha256.Sum256(der), nil
}

// GenerateBackup generates a P-256 key for use as a backup pin and returns
// it with its pin. Put the pin in the set next to the current key's pin and
// keep the key offline: the day the current key must go, get a
// certificate for the backup key and deploy it, and every installed app
// still connects (see "Rolling a server key" in the package doc).
func GenerateBackup() (*ecdsa.PrivateKey, Pin, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, Pin{}, fmt.Errorf("moat/pinning: generating backup key: %w", err)
	}
	p, err := PinOfPublicKey(&key.PublicKey)
	if err != nil {
		return nil, Pin{}, err
	}
	return key, p, nil
}

// String returns the text form "sha256/BASE64".
func (p Pin) String() string {
	return pinPrefix + base64.StdEncoding.EncodeToString(p[:])
}

// MarshalText returns the text form, so pins are JSON strings.
func (p Pin) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the text form with [ParsePin].
func (p *Pin) UnmarshalText(b []byte) error {
	v, err := ParsePin(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
