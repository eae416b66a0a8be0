package stepup

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// Sealer encrypts secrets at rest (TOTP and HOTP seeds): package
// securestore implements it with envelope encryption and key rotation;
// [MemorySealer] is an in-memory one for tests. The associated data binds
// a sealed value to its record, so a seed copied into another user's
// record does not open.
type Sealer interface {
	// Seal encrypts and authenticates plaintext, binding associatedData.
	Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	// Open reverses Seal. A value that was tampered with, sealed under
	// another key or with other associated data gives an error.
	Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error)
}

// MemorySealer seals with AES-256-GCM under a random key that lives only
// in memory: values sealed by one MemorySealer open with no other, and
// none survive a restart. For tests and examples.
type MemorySealer struct {
	aead cipher.AEAD
}

var _ Sealer = (*MemorySealer)(nil)

// NewMemorySealer returns a sealer with a fresh random key.
func NewMemorySealer() (*MemorySealer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &MemorySealer{aead: aead}, nil
}

// Seal implements [Sealer]: a random 96-bit nonce followed by the
// ciphertext and tag.
func (s *MemorySealer) Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	return s.aead.Seal(out, out, plaintext, associatedData), nil
}

// Open implements [Sealer].
func (s *MemorySealer) Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnsealed
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], associatedData)
	if err != nil {
		return nil, ErrUnsealed
	}
	return out, nil
}
