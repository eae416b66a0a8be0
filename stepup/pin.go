package stepup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// PIN check defaults: a PIN has few combinations, so its budget is
// smaller than a password's.
const (
	DefaultPINMaxFailures            = 3
	DefaultPINMaxConsecutiveFailures = 10
	DefaultPINMinLength              = 4
	DefaultPINMaxLength              = 12
)

// PINRecord is a PIN set for one user on one device: a durable record.
type PINRecord struct {
	DeviceID string
	Subject  string
	// Hash is the PIN's Argon2id hash.
	Hash      string
	CreatedAt time.Time
}

// PINStore keeps PINs by device: a durable store (PostgreSQL in
// production, [MemoryPINStore] for tests), checked by the conformance suite
// in package stepuptest.
type PINStore interface {
	// Get returns the PIN set on deviceID, or ErrNotFound.
	Get(ctx context.Context, deviceID string) (PINRecord, error)
	// Put creates or replaces the PIN of r.DeviceID.
	Put(ctx context.Context, r PINRecord) error
	// Delete removes deviceID's PIN; a missing one is not an error.
	Delete(ctx context.Context, deviceID string) error
}

// PINConfig configures [NewPINCheck].
type PINConfig struct {
	// Name is the check's name in the protocol. Required.
	Name string
	// PINs keeps the PIN hashes by device. Required.
	PINs PINStore
	// Hasher hashes and verifies PINs. Required.
	Hasher *PasswordHasher
	// Store keeps the attempt state. Required.
	Store kv.Store
	// Lockout sets the PIN's own attempt budget per user. Zero fields
	// mean the lockout defaults, except MaxFailures (zero means
	// DefaultPINMaxFailures, 3) and MaxConsecutiveFailures (zero means
	// DefaultPINMaxConsecutiveFailures, 10).
	Lockout LockoutConfig
	// MinLength and MaxLength bound a PIN's digits. Zero means
	// DefaultPINMinLength (4) and DefaultPINMaxLength (12).
	MinLength, MaxLength int
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["pin"].
	AMR []string
}

// PINCheck is a PIN check for channels where a password is awkward (a
// watch). A PIN is set for a user on one device ([PINCheck.SetPIN]) and
// works only there: the check finds it by the client's device id, and so
// identifies the user (its success carries the subject). PINs are digits,
// hashed with Argon2id; a small attempt budget of its own applies per user.
//
// Challenge: {"min_length":4,"max_length":12}, plus "reason" and
// "attempts_left" after a failure.
// Answer: {"pin":"4821"}.
type PINCheck struct {
	base
	pins     PINStore
	hasher   *PasswordHasher
	min, max int
}

var _ auth.Check = (*PINCheck)(nil)

// NewPINCheck returns a PIN check.
func NewPINCheck(cfg PINConfig) (*PINCheck, error) {
	if cfg.PINs == nil || cfg.Hasher == nil {
		return nil, fmt.Errorf("%w: PIN check needs PINs and a Hasher", ErrInvalidConfig)
	}
	lc := cfg.Lockout
	lc.MaxFailures = or(lc.MaxFailures, DefaultPINMaxFailures)
	lc.MaxConsecutiveFailures = or(lc.MaxConsecutiveFailures, DefaultPINMaxConsecutiveFailures)
	b, err := newBase(cfg.Name, cfg.Store, lc, cfg.ValidFor, cfg.AMR, []string{AMRPIN})
	if err != nil {
		return nil, err
	}
	c := &PINCheck{base: b, pins: cfg.PINs, hasher: cfg.Hasher, min: or(cfg.MinLength, DefaultPINMinLength), max: or(cfg.MaxLength, DefaultPINMaxLength)}
	if c.min < 4 || c.max > 64 || c.min > c.max {
		return nil, fmt.Errorf("%w: PIN lengths must satisfy 4 ≤ MinLength ≤ MaxLength ≤ 64", ErrInvalidConfig)
	}
	return c, nil
}

// ValidPIN checks a new PIN against the rules: digits only, within the
// lengths, and not a trivial one (all one digit, or an ascending or
// descending run such as 1234 or 9876).
func (c *PINCheck) ValidPIN(pin string) error {
	if len(pin) < c.min || len(pin) > c.max || !validDigits(pin, len(pin)) {
		return fmt.Errorf("%w: %d to %d digits", ErrInvalidPIN, c.min, c.max)
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		d := int(pin[i]) - int(pin[i-1])
		same = same && d == 0
		up = up && (d == 1 || d == -9)
		down = down && (d == -1 || d == 9)
	}
	if same || up || down {
		return fmt.Errorf("%w: too easy to guess", ErrInvalidPIN)
	}
	return nil
}

// SetPIN sets subject's PIN on deviceID, replacing the device's previous
// PIN. The caller must have authenticated the user on that device.
func (c *PINCheck) SetPIN(ctx context.Context, deviceID, subject, pin string, now time.Time) error {
	if deviceID == "" || subject == "" {
		return errors.New("moat/stepup: a PIN needs a device id and a subject")
	}
	if err := c.ValidPIN(pin); err != nil {
		return err
	}
	h, err := c.hasher.Hash(ctx, pin)
	if err != nil {
		return err
	}
	return c.pins.Put(ctx, PINRecord{DeviceID: deviceID, Subject: subject, Hash: h, CreatedAt: now})
}

// RemovePIN removes deviceID's PIN.
func (c *PINCheck) RemovePIN(ctx context.Context, deviceID string) error {
	return c.pins.Delete(ctx, deviceID)
}

// PINChallenge is the PIN check's challenge.
type PINChallenge struct {
	MinLength    int    `json:"min_length"`
	MaxLength    int    `json:"max_length"`
	Reason       string `json:"reason,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

// PINAnswer is the answer the PIN check expects.
type PINAnswer struct {
	PIN string `json:"pin"`
}

// Authorize implements auth.Check.
func (c *PINCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Client == nil || req.Client.DeviceID == "" {
		return refused(ReasonNotEnrolled), nil
	}
	rec, err := c.pins.Get(ctx, req.Client.DeviceID)
	if errors.Is(err, ErrNotFound) {
		return refused(ReasonNotEnrolled), nil
	}
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: reading PIN: %w", err)
	}
	if req.Subject != "" && req.Subject != rec.Subject {
		return refused(ReasonSubjectMismatch), nil
	}
	again := func(reason string, left int) any {
		ch := PINChallenge{MinLength: c.min, MaxLength: c.max, Reason: reason}
		if reason != "" && reason != ReasonMalformed {
			ch.AttemptsLeft = &left
		}
		return ch
	}
	if !hasAnswer(req.Answer) {
		return challenge(again("", 0), ""), nil
	}
	var a PINAnswer
	if err := decodeAnswer(req.Answer, &a); err != nil || a.PIN == "" || len(a.PIN) > 64 {
		return challenge(again(ReasonMalformed, 0), ReasonMalformed), nil
	}
	out, err := c.lock.Try(ctx, "user:"+rec.Subject, req.Now, func(ctx context.Context) (bool, error) {
		ok, _, err := c.hasher.Verify(ctx, rec.Hash, a.PIN)
		return ok, err
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	return c.outcome(out, rec.Subject, ReasonWrongPIN, again), nil
}

// MemoryPINStore is the in-memory [PINStore]. It is safe for concurrent
// use.
type MemoryPINStore struct{ m memoryMap[PINRecord] }

var _ PINStore = (*MemoryPINStore)(nil)

// NewMemoryPINStore returns an empty store.
func NewMemoryPINStore() *MemoryPINStore { return &MemoryPINStore{} }

// Get implements [PINStore].
func (s *MemoryPINStore) Get(ctx context.Context, deviceID string) (PINRecord, error) {
	return s.m.get(ctx, deviceID)
}

// Put implements [PINStore].
func (s *MemoryPINStore) Put(ctx context.Context, r PINRecord) error {
	return s.m.put(ctx, r.DeviceID, r)
}

// Delete implements [PINStore].
func (s *MemoryPINStore) Delete(ctx context.Context, deviceID string) error {
	return s.m.delete(ctx, deviceID)
}
