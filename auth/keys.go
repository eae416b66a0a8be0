package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// VerificationKey is a public key that may verify tokens, with the one
// algorithm it is used with.
type VerificationKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey
}

// KeySource finds the key a token names in its "kid" header. Lookups make
// no network call: keys are never taken from a token's own jwk, jku, x5u or
// x5c headers.
type KeySource interface {
	VerificationKey(kid string) (VerificationKey, bool)
}

// GenerateSigningKey returns a fresh private key for alg (ES256 or EdDSA).
func GenerateSigningKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("%w: algorithm %q (ES256, EdDSA)", ErrUnsupportedKey, alg)
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a public key,
// base64url without padding: the form of cnf.jkt and of key ids.
func Thumbprint(key crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: key}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

type signingKey struct {
	VerificationKey
	signer jose.Signer
	public jose.JSONWebKey
}

// KeySet holds the server's token signing keys: the current one, which
// signs, and the previous ones, which still verify until their tokens have
// expired. Rotate adds a new current key. KeySet is a [KeySource] and serves
// the JWKS document. It is safe for concurrent use.
//
// Every server instance must hold the same keys: load them from where the
// operator keeps them (sealed at rest) rather than generating them per
// process, except in tests and examples.
type KeySet struct {
	mu       sync.RWMutex
	current  *signingKey
	previous []*signingKey
	keep     int
}

var _ KeySource = (*KeySet)(nil)

// NewKeySet returns a key set signing with signer (an ECDSA P-256 key for
// ES256 or an Ed25519 key for EdDSA; any crypto.Signer with such a public
// key works, an HSM's too). keepPrevious is how many retired keys still
// verify; zero keeps one.
func NewKeySet(signer crypto.Signer, keepPrevious int) (*KeySet, error) {
	k, err := newSigningKey(signer)
	if err != nil {
		return nil, err
	}
	if keepPrevious <= 0 {
		keepPrevious = 1
	}
	return &KeySet{current: k, keep: keepPrevious}, nil
}

func newSigningKey(signer crypto.Signer) (*signingKey, error) {
	if signer == nil {
		return nil, fmt.Errorf("%w: nil signing key", ErrUnsupportedKey)
	}
	pub := signer.Public()
	alg := algorithmFor(pub)
	if alg == "" {
		return nil, fmt.Errorf("%w: signing keys must be ECDSA P-256 or Ed25519", ErrUnsupportedKey)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	var key any = signer
	switch signer.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		key = cryptosigner.Opaque(signer)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, fmt.Errorf("moat/auth: signing key: %w", err)
	}
	return &signingKey{
		VerificationKey: VerificationKey{ID: kid, Algorithm: alg, Key: pub},
		signer:          js,
		public:          jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"},
	}, nil
}

// Rotate makes signer the current key. The old current key keeps verifying
// (it moves to the previous keys, the oldest of which is dropped).
func (s *KeySet) Rotate(signer crypto.Signer) error {
	k, err := newSigningKey(signer)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.ID == s.current.ID {
		return errors.New("moat/auth: rotate: the new key is the current key")
	}
	s.previous = append([]*signingKey{s.current}, s.previous...)
	if len(s.previous) > s.keep {
		s.previous = s.previous[:s.keep]
	}
	s.current = k
	return nil
}

// CurrentKeyID returns the kid of the key that signs new tokens.
func (s *KeySet) CurrentKeyID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current.ID
}

// VerificationKey implements [KeySource].
func (s *KeySet) VerificationKey(kid string) (VerificationKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.current.ID == kid {
		return s.current.VerificationKey, true
	}
	for _, k := range s.previous {
		if k.ID == kid {
			return k.VerificationKey, true
		}
	}
	return VerificationKey{}, false
}

// JWKS returns the public keys (current first) as a JWK Set.
func (s *KeySet) JWKS() jose.JSONWebKeySet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.current.public}}
	for _, k := range s.previous {
		set.Keys = append(set.Keys, k.public)
	}
	return set
}

// sign signs payload (JSON claims) with the current key.
func (s *KeySet) sign(payload []byte) (string, error) {
	s.mu.RLock()
	k := s.current
	s.mu.RUnlock()
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("moat/auth: signing token: %w", err)
	}
	return jws.CompactSerialize()
}

// StaticKeys is a [KeySource] over a fixed JWK Set, for resource servers
// that load the authorization server's JWKS from a file or fetch it at
// start.
type StaticKeys struct {
	keys map[string]VerificationKey
}

var _ KeySource = (*StaticKeys)(nil)

// NewStaticKeys accepts the ECDSA P-256 and Ed25519 public keys of set.
// Every key needs a kid; a key whose "alg" disagrees with its type, a
// private key, or a key of another type is refused.
func NewStaticKeys(set jose.JSONWebKeySet) (*StaticKeys, error) {
	sk := &StaticKeys{keys: make(map[string]VerificationKey, len(set.Keys))}
	for _, k := range set.Keys {
		if k.KeyID == "" {
			return nil, fmt.Errorf("%w: a key in the set has no kid", ErrUnsupportedKey)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("%w: key %q is not a public key", ErrUnsupportedKey, k.KeyID)
		}
		alg := algorithmFor(k.Key)
		if alg == "" {
			return nil, fmt.Errorf("%w: key %q is not ECDSA P-256 or Ed25519", ErrUnsupportedKey, k.KeyID)
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			return nil, fmt.Errorf("%w: key %q says alg %q but is an %s key", ErrUnsupportedKey, k.KeyID, k.Algorithm, alg)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if _, dup := sk.keys[k.KeyID]; dup {
			return nil, fmt.Errorf("%w: kid %q appears twice", ErrUnsupportedKey, k.KeyID)
		}
		sk.keys[k.KeyID] = VerificationKey{ID: k.KeyID, Algorithm: alg, Key: k.Key}
	}
	if len(sk.keys) == 0 {
		return nil, fmt.Errorf("%w: no usable signing keys in the set", ErrUnsupportedKey)
	}
	return sk, nil
}

// VerificationKey implements [KeySource].
func (s *StaticKeys) VerificationKey(kid string) (VerificationKey, bool) {
	k, ok := s.keys[kid]
	return k, ok
}

// sha256b64 returns base64url(SHA-256(s)).
func sha256b64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
