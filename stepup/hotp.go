package stepup

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// DefaultLookAhead is how many counters past the expected one an HOTP
// check accepts when HOTPConfig.LookAhead is zero.
const DefaultLookAhead = 10

// HOTPConfig configures [NewHOTPCheck].
type HOTPConfig struct {
	// Name is the check's name in the protocol. Required.
	Name string
	// Enrollments keeps tokens and their counters. Required.
	Enrollments OTPStore
	// Sealer encrypts seeds at rest. Required: a *securestore.Sealer in
	// production (see TOTPConfig.Sealer).
	Sealer Sealer
	// Store keeps the attempt state. Required.
	Store kv.Store
	// Lockout sets the attempt budget per user; the zero value gives the
	// lockout defaults with the budget named after the check.
	Lockout LockoutConfig
	// LookAhead is how many counters past the expected one are accepted
	// (a token's button pressed without logging in). Zero means
	// DefaultLookAhead (10); at most 100.
	LookAhead int
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["otp"].
	AMR []string
}

// HOTPCheck is an RFC 4226 counter-based one-time password check for
// hardware tokens. It looks only forward: with next expected counter n and
// look-ahead w it accepts the codes of counters n to n+w, and a match at c
// moves the next expected counter to c+1, so every counter up to c is
// refused from then on.
//
// Challenge: {"digits":6}, plus "reason" and "attempts_left" after a
// failure.
// Answer: {"code":"123456"}.
type HOTPCheck struct {
	otpCheck
	lookAhead int
}

var _ auth.Check = (*HOTPCheck)(nil)

// NewHOTPCheck returns an HOTP check.
func NewHOTPCheck(cfg HOTPConfig) (*HOTPCheck, error) {
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, cfg.AMR, []string{AMROTP})
	if err != nil {
		return nil, err
	}
	oc, err := newOTPCheck(KindHOTP, b, cfg.Enrollments, cfg.Sealer)
	if err != nil {
		return nil, err
	}
	c := &HOTPCheck{otpCheck: oc, lookAhead: or(cfg.LookAhead, DefaultLookAhead)}
	if c.lookAhead < 1 || c.lookAhead > 100 {
		return nil, fmt.Errorf("%w: HOTP LookAhead must be 1..100", ErrInvalidConfig)
	}
	return c, nil
}

// Import enrolls a hardware token for subject: its seed (at least 16
// bytes, RFC 4226 R6), algorithm and digits, and the next counter it will
// produce. It replaces the user's previous token.
func (c *HOTPCheck) Import(ctx context.Context, subject string, key OTPKey, next int64, now time.Time) error {
	k, err := key.normalized()
	if err != nil {
		return err
	}
	if subject == "" || len(k.Secret) < 16 || next < 0 {
		return fmt.Errorf("moat/stepup: HOTP import needs a subject, a seed of at least 16 bytes and a counter ≥ 0")
	}
	id, err := newEnrollmentID()
	if err != nil {
		return err
	}
	sealed, err := c.seal(ctx, KindHOTP, subject, id, k.Secret)
	if err != nil {
		return err
	}
	return c.enrollments.Put(ctx, OTPEnrollment{Subject: subject, Kind: KindHOTP, ID: id, SealedSecret: sealed,
		Algorithm: k.Algorithm, Digits: k.Digits, Counter: next, CreatedAt: now})
}

// Authorize implements auth.Check.
func (c *HOTPCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	return c.authorize(ctx, req, func(k OTPKey, e OTPEnrollment, code string) (int64, bool) {
		if e.Counter < 0 || e.Counter > math.MaxInt64-int64(c.lookAhead)-1 {
			return 0, false
		}
		from := uint64(e.Counter)
		got, ok := k.VerifyHOTP(code, from, from+uint64(c.lookAhead))
		return int64(got) + 1, ok
	})
}
