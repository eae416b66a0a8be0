package stepup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// Reasons that checks put in auth.CheckResult.Reason and in their
// challenges' "reason" member. None is secret.
const (
	ReasonWrongCredentials = "wrong_credentials" // password or username wrong
	ReasonWrongCode        = "wrong_code"        // one-time code, TOTP, HOTP or recovery code wrong (or already used)
	ReasonWrongPIN         = "wrong_pin"
	ReasonBadSignature     = "invalid_signature" // device-key signature did not verify
	ReasonExpired          = "expired"           // the challenge expired; a new one was issued
	ReasonMalformed        = "malformed_answer"  // the answer is not what the challenge asks for
	ReasonBlocked          = "blocked"           // too many failures: blocked until BlockedUntil
	ReasonTooManyAttempts  = "too_many_attempts" // a burst of concurrent attempts used up the budget
	ReasonSubjectRequired  = "subject_required"  // an earlier check must establish the user first
	ReasonNotEnrolled      = "not_enrolled"      // the user or device has no credential for this check
	ReasonSubjectMismatch  = "subject_mismatch"  // the credential belongs to another user than the session's
	ReasonAccountDisabled  = "account_disabled"
	ReasonResendTooSoon    = "resend_too_soon"
	ReasonSendLimit        = "send_limit" // too many codes sent to this user recently
	ReasonNoMethod         = "no_method_for_channel"
)

// maxAnswerSize bounds an answer's JSON. The auth endpoint bounds the whole
// request body; this is a second, tighter limit per check.
const maxAnswerSize = 8 << 10

// decodeAnswer decodes a check's answer strictly: one JSON object, no
// unknown members, no trailing data.
func decodeAnswer(raw json.RawMessage, v any) error {
	if len(raw) > maxAnswerSize {
		return errors.New("answer too large")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// hasAnswer reports whether the client sent an answer (JSON null counts as
// none).
func hasAnswer(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// base is what every check shares: its name, its lockout, how long its
// success holds and the amr it contributes.
type base struct {
	name     string
	lock     *Lockout
	validFor time.Duration
	amr      []string
}

func newBase(name string, store kv.Store, lc LockoutConfig, validFor time.Duration, amr, defaultAMR []string) (base, error) {
	if name == "" {
		return base{}, fmt.Errorf("%w: a check needs a Name", ErrInvalidConfig)
	}
	if store == nil {
		return base{}, fmt.Errorf("%w: check %s needs a kv.Store", ErrInvalidConfig, name)
	}
	if validFor < 0 {
		return base{}, fmt.Errorf("%w: check %s: ValidFor must not be negative", ErrInvalidConfig, name)
	}
	if validFor == 0 {
		validFor = DefaultValidFor
	}
	if lc.Name == "" {
		lc.Name = name
	}
	lock, err := NewLockout(store, lc)
	if err != nil {
		return base{}, fmt.Errorf("check %s: %w", name, err)
	}
	if len(amr) == 0 {
		amr = defaultAMR
	}
	return base{name: name, lock: lock, validFor: validFor, amr: slices.Clone(amr)}, nil
}

// Name implements auth.Check.
func (b *base) Name() string { return b.name }

// Lockout returns the check's attempt state machine, for status pages
// (State). Accounts are named "user:<subject>" (and, for the password
// check's unknown usernames, "unknown:<lower-cased username>").
func (b *base) Lockout() *Lockout { return b.lock }

// Unblock forgets subject's failures in this check's budget and lifts its
// block: what an operator or a recovery flow does for a locked-out user.
func (b *base) Unblock(ctx context.Context, subject string) error {
	return b.lock.Reset(ctx, "user:"+subject)
}

func (b *base) success(subject string) auth.CheckResult {
	return auth.CheckResult{Status: auth.CheckSuccess, Subject: subject, AMR: slices.Clone(b.amr), ValidFor: b.validFor}
}

func challenge(ch any, reason string) auth.CheckResult {
	return auth.CheckResult{Status: auth.CheckChallenge, Challenge: ch, Reason: reason}
}

func refused(reason string) auth.CheckResult {
	return auth.CheckResult{Status: auth.CheckRefused, Reason: reason}
}

func blocked(until time.Time, busy bool) auth.CheckResult {
	r := auth.CheckResult{Status: auth.CheckBlocked, BlockedUntil: until, Reason: ReasonBlocked}
	if busy {
		r.Reason = ReasonTooManyAttempts
	}
	return r
}

// outcome turns a lockout outcome into a check result: success, blocked,
// or the challenge again with the failure's reason and attempts left.
func (b *base) outcome(out Outcome, subject, reason string, again func(reason string, left int) any) auth.CheckResult {
	switch {
	case out.OK:
		return b.success(subject)
	case out.Blocked:
		return blocked(out.BlockedUntil, out.Busy)
	}
	return challenge(again(reason, out.AttemptsLeft), reason)
}
