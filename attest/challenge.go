package attest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/nonce"
	"github.com/moatsec/moat/kv"
)

// ChallengeSize is the length of the value [Challenge] returns.
const ChallengeSize = sha256.Size

// challengeLabel starts every registration challenge, so the value cannot
// be confused with any other SHA-256 the app computes.
const challengeLabel = "moat-attest-v1\n"

// Challenge returns the 32-byte attestation challenge for a registration:
//
//	SHA-256( "moat-attest-v1\n" || nonce || "\n" || keyThumbprint )
//
// where nonce is the server nonce exactly as the server sent it (a
// base64url string) and keyThumbprint is the RFC 7638 SHA-256 thumbprint of
// the client's DPoP public key, base64url without padding, both as UTF-8
// bytes, and "\n" is the single byte 0x0A. Neither string may be empty or
// contain a newline (base64url never does), which makes the encoding
// unambiguous.
//
// The app passes the result, unchanged, as App Attest's clientDataHash, as
// Android's setAttestationChallenge, and base64url-encoded (no padding) as
// Play Integrity's requestHash or nonce.
func Challenge(nonce, keyThumbprint string) ([]byte, error) {
	if nonce == "" || keyThumbprint == "" {
		return nil, errors.New("moat/attest: challenge needs a nonce and a key thumbprint")
	}
	if strings.ContainsRune(nonce, '\n') || strings.ContainsRune(keyThumbprint, '\n') {
		return nil, errors.New("moat/attest: nonce and key thumbprint may not contain newlines")
	}
	h := sha256.New()
	h.Write([]byte(challengeLabel))
	h.Write([]byte(nonce))
	h.Write([]byte{'\n'})
	h.Write([]byte(keyThumbprint))
	return h.Sum(nil), nil
}

// Challenges issues single-use, expiring challenges kept in a [kv.Store]:
// for App Attest assertions on sensitive requests, or for a standalone
// attestation flow outside registration. (Registration uses the server
// nonce that the registration endpoint already issues and consumes.)
// Several server instances sharing the store share the challenges.
type Challenges struct {
	issuer *nonce.Issuer
}

// NewChallenges returns challenges that live ttl in store.
func NewChallenges(store kv.Store, ttl time.Duration) (*Challenges, error) {
	is, err := nonce.New(store, "attest/challenge/", ttl)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: %w", err)
	}
	return &Challenges{issuer: is}, nil
}

// Issue returns a fresh challenge (a base64url string of 32 random
// bytes). binding (may be nil) is kept with it and returned by Consume: the
// App Attest key id or client id the challenge was issued to.
func (c *Challenges) Issue(ctx context.Context, binding []byte) (string, error) {
	return c.issuer.Issue(ctx, binding)
}

// Consume checks that challenge was issued, has not expired and was not
// used, marks it used, and returns its binding. Exactly one of concurrent
// callers succeeds; the others get an [*Error] wrapping
// [ErrChallengeInvalid]. A store failure is returned as is.
func (c *Challenges) Consume(ctx context.Context, challenge string) ([]byte, error) {
	b, err := c.issuer.Consume(ctx, challenge)
	if errors.Is(err, nonce.ErrInvalid) {
		return nil, refuse(ErrChallengeInvalid, "")
	}
	return b, err
}
