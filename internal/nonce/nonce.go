// Package nonce issues single-use, expiring random values kept in a
// [kv.Store]: attestation challenges, device-key challenges, DPoP server
// nonces. A nonce is 32 bytes from crypto/rand, encoded base64url without
// padding; the store holds only its SHA-256 digest, so a dump of the store
// does not reveal live nonces.
package nonce

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/moatsec/moat/kv"
)

// Size is the number of random bytes in a nonce.
const Size = 32

// ErrInvalid reports a nonce that was never issued, has expired, or was
// already used.
var ErrInvalid = errors.New("moat: nonce unknown, expired or already used")

// Issuer issues and consumes nonces under one key prefix.
type Issuer struct {
	store  kv.Store
	prefix string
	ttl    time.Duration
}

// New returns an issuer whose nonces live ttl in store under prefix.
func New(store kv.Store, prefix string, ttl time.Duration) (*Issuer, error) {
	if store == nil {
		return nil, errors.New("moat: nonce issuer needs a kv.Store")
	}
	if ttl <= 0 {
		return nil, errors.New("moat: nonce ttl must be positive")
	}
	return &Issuer{store: store, prefix: prefix, ttl: ttl}, nil
}

// TTL returns how long an issued nonce stays valid.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Issue returns a fresh nonce. data (which may be nil) is stored with it
// and returned by Consume, so a nonce can be bound to a user or a key.
func (i *Issuer) Issue(ctx context.Context, data []byte) (string, error) {
	var b [Size]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("moat: reading randomness: %w", err)
	}
	n := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := i.store.CompareAndSet(ctx, i.key(n), data, i.ttl, 0); err != nil {
		return "", fmt.Errorf("moat: storing nonce: %w", err)
	}
	return n, nil
}

// Consume checks that nonce was issued, has not expired and was not used,
// and marks it used. Exactly one of concurrent callers succeeds. It returns
// the data given to Issue. A store failure is returned as is (not as
// ErrInvalid), so callers can tell "refused" from "unavailable".
func (i *Issuer) Consume(ctx context.Context, nonce string) ([]byte, error) {
	if nonce == "" || len(nonce) > 2*base64.RawURLEncoding.EncodedLen(Size) {
		return nil, ErrInvalid
	}
	it, err := i.store.Consume(ctx, i.key(nonce))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("moat: consuming nonce: %w", err)
	}
	return it.Value, nil
}

// Check reports whether nonce was issued and has not expired, without using
// it up: for nonces that may be presented many times within their life
// (DPoP server nonces). It returns ErrInvalid or a store error.
func (i *Issuer) Check(ctx context.Context, nonce string) error {
	if nonce == "" || len(nonce) > 2*base64.RawURLEncoding.EncodedLen(Size) {
		return ErrInvalid
	}
	_, err := i.store.Get(ctx, i.key(nonce))
	if errors.Is(err, kv.ErrNotFound) {
		return ErrInvalid
	}
	if err != nil {
		return fmt.Errorf("moat: checking nonce: %w", err)
	}
	return nil
}

func (i *Issuer) key(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return i.prefix + base64.RawURLEncoding.EncodeToString(sum[:])
}
