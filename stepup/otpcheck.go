package stepup

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/moatsec/moat/auth"
)

// OTPChallenge is the TOTP and HOTP checks' challenge.
type OTPChallenge struct {
	// Digits is the code length.
	Digits int `json:"digits"`
	// Period is the TOTP step in seconds (absent for HOTP).
	Period       int    `json:"period,omitempty"`
	Reason       string `json:"reason,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

// OTPAnswer is the answer the TOTP, HOTP and recovery-code checks expect.
type OTPAnswer struct {
	Code string `json:"code"`
}

// otpCheck is what the TOTP and HOTP checks share: loading and unsealing
// an enrollment, and the answer-verify-advance path under the lockout.
type otpCheck struct {
	base
	kind        OTPKind
	enrollments OTPStore
	sealer      Sealer
}

func newOTPCheck(kind OTPKind, b base, enrollments OTPStore, sealer Sealer) (otpCheck, error) {
	if enrollments == nil || sealer == nil {
		return otpCheck{}, fmt.Errorf("%w: %s check needs Enrollments and a Sealer", ErrInvalidConfig, kind)
	}
	return otpCheck{base: b, kind: kind, enrollments: enrollments, sealer: sealer}, nil
}

// otpAD is the associated data binding a sealed seed to its record.
func otpAD(kind OTPKind, subject, id string) []byte {
	return []byte("moat/stepup otp seed v1\x00" + string(kind) + "\x00" + subject + "\x00" + id)
}

func newEnrollmentID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// key unseals an enrollment's seed.
func (c *otpCheck) key(ctx context.Context, e OTPEnrollment) (OTPKey, error) {
	secret, err := c.sealer.Open(ctx, e.SealedSecret, otpAD(e.Kind, e.Subject, e.ID))
	if err != nil {
		return OTPKey{}, fmt.Errorf("moat/stepup: opening %s seed: %w", e.Kind, err)
	}
	return OTPKey{Secret: secret, Algorithm: e.Algorithm, Digits: e.Digits, Period: e.Period}, nil
}

// seal seals secret for the record (kind, subject, id).
func (c *otpCheck) seal(ctx context.Context, kind OTPKind, subject, id string, secret []byte) ([]byte, error) {
	s, err := c.sealer.Seal(ctx, secret, otpAD(kind, subject, id))
	if err != nil {
		return nil, fmt.Errorf("moat/stepup: sealing %s seed: %w", kind, err)
	}
	return s, nil
}

// authorize runs the common flow. match checks a code against the key
// and enrollment and returns the counter to advance to.
func (c *otpCheck) authorize(ctx context.Context, req *auth.CheckRequest, match func(OTPKey, OTPEnrollment, string) (int64, bool)) (auth.CheckResult, error) {
	if req.Subject == "" {
		return refused(ReasonSubjectRequired), nil
	}
	e, err := c.enrollments.Get(ctx, req.Subject, c.kind)
	if errors.Is(err, ErrNotFound) {
		return refused(ReasonNotEnrolled), nil
	}
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: reading %s enrollment: %w", c.kind, err)
	}
	again := func(reason string, left int) any {
		ch := OTPChallenge{Digits: e.Digits, Period: e.Period, Reason: reason}
		if reason != "" && reason != ReasonMalformed {
			ch.AttemptsLeft = &left
		}
		return ch
	}
	if !hasAnswer(req.Answer) {
		return challenge(again("", 0), ""), nil
	}
	var a OTPAnswer
	if err := decodeAnswer(req.Answer, &a); err != nil || a.Code == "" {
		return challenge(again(ReasonMalformed, 0), ReasonMalformed), nil
	}
	out, err := c.lock.Try(ctx, "user:"+req.Subject, req.Now, func(ctx context.Context) (bool, error) {
		k, err := c.key(ctx, e)
		if err != nil {
			return false, err
		}
		counter, ok := match(k, e, a.Code)
		clear(k.Secret)
		if !ok {
			return false, nil
		}
		switch err := c.enrollments.Advance(ctx, req.Subject, c.kind, e.ID, counter); {
		case errors.Is(err, ErrReplay), errors.Is(err, ErrNotFound):
			return false, nil // used by a concurrent answer, or re-enrolled meanwhile
		case err != nil:
			return false, fmt.Errorf("moat/stepup: advancing %s counter: %w", c.kind, err)
		}
		return true, nil
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	return c.outcome(out, req.Subject, ReasonWrongCode, again), nil
}

// Enrolled reports whether subject has a confirmed enrollment.
func (c *otpCheck) Enrolled(ctx context.Context, subject string) (bool, error) {
	_, err := c.enrollments.Get(ctx, subject, c.kind)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Remove deletes subject's enrollment.
func (c *otpCheck) Remove(ctx context.Context, subject string) error {
	return c.enrollments.Delete(ctx, subject, c.kind)
}
