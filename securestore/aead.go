package securestore

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEAD names the authenticated cipher that seals records. Its zero value
// in a config means [AES256GCM].
type AEAD uint8

const (
	// AES256GCM is AES-256 in Galois/Counter Mode with 96-bit random
	// nonces: fast wherever the CPU has AES instructions. Keys are rotated
	// long before 2^32 records are sealed under one of them.
	AES256GCM AEAD = 1
	// XChaCha20Poly1305 is ChaCha20-Poly1305 with 192-bit random nonces:
	// constant-time without AES instructions, and no practical limit on
	// the number of records per key.
	XChaCha20Poly1305 AEAD = 2
)

// String returns the cipher's name as ParseAEAD accepts it.
func (a AEAD) String() string {
	switch a {
	case AES256GCM:
		return "aes-256-gcm"
	case XChaCha20Poly1305:
		return "xchacha20-poly1305"
	}
	return fmt.Sprintf("unknown-aead-%d", uint8(a))
}

// ParseAEAD returns the cipher named "aes-256-gcm" or "xchacha20-poly1305".
func ParseAEAD(name string) (AEAD, error) {
	for _, a := range []AEAD{AES256GCM, XChaCha20Poly1305} {
		if a.String() == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, name)
}

// orDefault maps the zero value to AES256GCM.
func (a AEAD) orDefault() AEAD {
	if a == 0 {
		return AES256GCM
	}
	return a
}

// nonceSize returns the nonce length, or 0 for an unknown cipher.
func (a AEAD) nonceSize() int {
	switch a {
	case AES256GCM:
		return 12
	case XChaCha20Poly1305:
		return chacha20poly1305.NonceSizeX
	}
	return 0
}

// newCipher returns the cipher keyed with a 32-byte key.
func newCipher(a AEAD, key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, ErrInvalidKey
	}
	switch a {
	case AES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case XChaCha20Poly1305:
		return chacha20poly1305.NewX(key)
	}
	return nil, fmt.Errorf("%w: aead %d", ErrUnknownAlgorithm, uint8(a))
}
