package stepup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/internal/nonce"
	"github.com/moatsec/moat/kv"
)

// DefaultDeviceKeyNonceTTL is how long a device-key challenge can be
// answered.
const DefaultDeviceKeyNonceTTL = 2 * time.Minute

// DeviceKey is a key an app instance holds in its device's secure element,
// usable only after a biometric prompt: a durable record.
type DeviceKey struct {
	// ClientID is the registered client (app instance) holding the key.
	ClientID string
	// Subject is the user the key signs in.
	Subject string
	// PublicKey is the key's public half, ECDSA P-256.
	PublicKey *ecdsa.PublicKey
	// Biometry is the user verification that releases the key, as the app
	// declared at enrollment: AMRFingerprint, AMRFace, AMRIris, or "" for
	// none (then the check's success carries only "hwk").
	Biometry  string
	CreatedAt time.Time
}

// DeviceKeyStore keeps device keys by client: a durable store (PostgreSQL
// in production, [MemoryDeviceKeyStore] for tests), checked by the
// conformance suite in package stepuptest.
type DeviceKeyStore interface {
	// Get returns clientID's key, or ErrNotFound.
	Get(ctx context.Context, clientID string) (DeviceKey, error)
	// Put creates or replaces the key of k.ClientID.
	Put(ctx context.Context, k DeviceKey) error
	// Delete removes clientID's key; a missing one is not an error.
	Delete(ctx context.Context, clientID string) error
}

// DeviceKeyConfig configures [NewDeviceKeyCheck].
type DeviceKeyConfig struct {
	// Name is the check's name in the protocol. Required.
	Name string
	// Keys keeps the enrolled keys. Required.
	Keys DeviceKeyStore
	// Store keeps the single-use nonces and the attempt state. Required.
	Store kv.Store
	// Lockout sets the attempt budget per user; the zero value gives the
	// lockout defaults with the budget named after the check.
	Lockout LockoutConfig
	// NonceTTL is how long a challenge can be answered. Zero means
	// DefaultDeviceKeyNonceTTL (2 min).
	NonceTTL time.Duration
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
}

// DeviceKeyCheck is the biometric device-key check: the app holds an ECDSA
// P-256 key in the secure element (Secure Enclave, Android StrongBox or
// TEE), usable only after a biometric prompt. The challenge is a
// single-use server nonce; the answer is the key's signature over
// [DeviceKeySigningInput]. It identifies the user (the success carries the
// enrolled subject) and contributes amr "hwk" plus the biometry declared
// at enrollment ("fpt", "face" or "iris").
//
// Challenge: {"nonce":"<base64url>","alg":"ES256","biometry":"fpt"}.
// Answer: {"nonce":"<the nonce>","signature":"<base64url ECDSA signature,
// ASN.1 DER or raw r||s>"}.
type DeviceKeyCheck struct {
	base
	keys   DeviceKeyStore
	nonces *nonce.Issuer
}

var _ auth.Check = (*DeviceKeyCheck)(nil)

// NewDeviceKeyCheck returns a device-key check.
func NewDeviceKeyCheck(cfg DeviceKeyConfig) (*DeviceKeyCheck, error) {
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: device-key check needs Keys", ErrInvalidConfig)
	}
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, nil, []string{AMRHardwareKey})
	if err != nil {
		return nil, err
	}
	ttl := or(cfg.NonceTTL, DefaultDeviceKeyNonceTTL)
	if ttl < 0 || ttl > 10*time.Minute {
		return nil, fmt.Errorf("%w: NonceTTL must be at most 10 minutes", ErrInvalidConfig)
	}
	n, err := nonce.New(cfg.Store, "stepup:dk-nonce:"+cfg.Name+":", ttl)
	if err != nil {
		return nil, err
	}
	return &DeviceKeyCheck{base: b, keys: cfg.Keys, nonces: n}, nil
}

// DeviceKeySigningInput is what the app signs (ECDSA P-256 over its
// SHA-256): the UTF-8 bytes of
//
//	"moat-device-key-v1\n" + clientID + "\n" + nonce
//
// Binding the client id keeps a signature made for one app instance from
// answering another's challenge.
func DeviceKeySigningInput(clientID, nonce string) []byte {
	return []byte("moat-device-key-v1\n" + clientID + "\n" + nonce)
}

var validBiometry = []string{"", AMRFingerprint, AMRFace, AMRIris}

// Enroll records k (replacing the client's previous key). The caller must
// have authenticated the user on that client.
func (c *DeviceKeyCheck) Enroll(ctx context.Context, k DeviceKey) error {
	if k.ClientID == "" || k.Subject == "" {
		return fmt.Errorf("%w: a device key needs a client id and a subject", ErrInvalidKey)
	}
	if k.PublicKey == nil || k.PublicKey.Curve != elliptic.P256() || k.PublicKey.X == nil || k.PublicKey.Y == nil {
		return fmt.Errorf("%w: not an ECDSA P-256 public key", ErrInvalidKey)
	}
	if _, err := k.PublicKey.ECDH(); err != nil { // checks the point is on the curve
		return fmt.Errorf("%w: not a valid P-256 point", ErrInvalidKey)
	}
	if !slices.Contains(validBiometry, k.Biometry) {
		return fmt.Errorf("%w: biometry must be fpt, face, iris or empty", ErrInvalidKey)
	}
	return c.keys.Put(ctx, k)
}

// Remove deletes clientID's key.
func (c *DeviceKeyCheck) Remove(ctx context.Context, clientID string) error {
	return c.keys.Delete(ctx, clientID)
}

// DeviceKeyChallenge is the device-key check's challenge.
type DeviceKeyChallenge struct {
	Nonce        string `json:"nonce"`
	Alg          string `json:"alg"`
	Biometry     string `json:"biometry,omitempty"`
	Reason       string `json:"reason,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

// DeviceKeyAnswer is the answer the device-key check expects.
type DeviceKeyAnswer struct {
	Nonce     string `json:"nonce"`
	Signature string `json:"signature"`
}

// Authorize implements auth.Check.
func (c *DeviceKeyCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Client == nil || req.Client.ID == "" {
		return refused(ReasonNotEnrolled), nil
	}
	clientID := req.Client.ID
	k, err := c.keys.Get(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		return refused(ReasonNotEnrolled), nil
	}
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: reading device key: %w", err)
	}
	if req.Subject != "" && req.Subject != k.Subject {
		return refused(ReasonSubjectMismatch), nil
	}
	fresh := func(reason string, left *int) (auth.CheckResult, error) {
		n, err := c.nonces.Issue(ctx, []byte(clientID))
		if err != nil {
			return auth.CheckResult{}, err
		}
		return challenge(DeviceKeyChallenge{Nonce: n, Alg: "ES256", Biometry: k.Biometry, Reason: reason, AttemptsLeft: left}, reason), nil
	}
	if !hasAnswer(req.Answer) {
		st, err := c.lock.State(ctx, "user:"+k.Subject, req.Now)
		if err != nil {
			return auth.CheckResult{}, err
		}
		if st.Blocked {
			return blocked(st.BlockedUntil, false), nil
		}
		return fresh("", nil)
	}
	var a DeviceKeyAnswer
	var sig []byte
	if err := decodeAnswer(req.Answer, &a); err == nil {
		sig, err = base64.RawURLEncoding.DecodeString(a.Signature)
		if err != nil || len(sig) == 0 || len(sig) > 80 {
			sig = nil
		}
	}
	if sig == nil || a.Nonce == "" {
		return fresh(ReasonMalformed, nil)
	}
	// The nonce is single use whatever the outcome.
	data, err := c.nonces.Consume(ctx, a.Nonce)
	if errors.Is(err, nonce.ErrInvalid) || (err == nil && string(data) != clientID) {
		return fresh(ReasonExpired, nil)
	}
	if err != nil {
		return auth.CheckResult{}, err
	}
	out, err := c.lock.Try(ctx, "user:"+k.Subject, req.Now, func(context.Context) (bool, error) {
		return verifyES256(k.PublicKey, DeviceKeySigningInput(clientID, a.Nonce), sig), nil
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	switch {
	case out.OK:
		r := c.success(k.Subject)
		if k.Biometry != "" {
			r.AMR = append(r.AMR, k.Biometry)
		}
		return r, nil
	case out.Blocked:
		return blocked(out.BlockedUntil, out.Busy), nil
	}
	return fresh(ReasonBadSignature, &out.AttemptsLeft)
}

// verifyES256 verifies an ECDSA P-256 SHA-256 signature in ASN.1 DER or
// raw r||s (64 bytes) form.
func verifyES256(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	if len(sig) == 64 {
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, h[:], r, s)
	}
	return ecdsa.VerifyASN1(pub, h[:], sig)
}

// MemoryDeviceKeyStore is the in-memory [DeviceKeyStore]. It is safe for
// concurrent use.
type MemoryDeviceKeyStore struct{ m memoryMap[DeviceKey] }

var _ DeviceKeyStore = (*MemoryDeviceKeyStore)(nil)

// NewMemoryDeviceKeyStore returns an empty store.
func NewMemoryDeviceKeyStore() *MemoryDeviceKeyStore { return &MemoryDeviceKeyStore{} }

// Get implements [DeviceKeyStore].
func (s *MemoryDeviceKeyStore) Get(ctx context.Context, clientID string) (DeviceKey, error) {
	return s.m.get(ctx, clientID)
}

// Put implements [DeviceKeyStore].
func (s *MemoryDeviceKeyStore) Put(ctx context.Context, k DeviceKey) error {
	return s.m.put(ctx, k.ClientID, k)
}

// Delete implements [DeviceKeyStore].
func (s *MemoryDeviceKeyStore) Delete(ctx context.Context, clientID string) error {
	return s.m.delete(ctx, clientID)
}
