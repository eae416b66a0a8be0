package stepup

import (
	"errors"
	"time"
)

var (
	// ErrNotFound reports a record a store does not hold: no enrollment, no
	// recovery code, no PIN, no device key.
	ErrNotFound = errors.New("moat/stepup: not found")
	// ErrReplay reports a one-time code or counter that is not newer than the
	// last one accepted: a replayed TOTP step or a used HOTP counter.
	ErrReplay = errors.New("moat/stepup: code already used")
	// ErrUnknownUser reports a username the user directory does not know.
	ErrUnknownUser = errors.New("moat/stepup: unknown user")
	// ErrNoDestination reports a user without a phone number or e-mail
	// address to send a one-time code to.
	ErrNoDestination = errors.New("moat/stepup: no destination for one-time codes")
	// ErrInvalidSecret reports an OTP secret that is empty or not base32.
	ErrInvalidSecret = errors.New("moat/stepup: invalid OTP secret")
	// ErrInvalidHash reports a password hash that is not a well-formed
	// Argon2id hash within the hasher's limits.
	ErrInvalidHash = errors.New("moat/stepup: invalid password hash")
	// ErrWrongCode reports a code or PIN that does not match.
	ErrWrongCode = errors.New("moat/stepup: wrong code")
	// ErrBlocked reports an account whose attempt budget is exhausted; see
	// [BlockedError] for when it unblocks.
	ErrBlocked = errors.New("moat/stepup: too many failed attempts")
	// ErrNoPendingEnrollment reports a confirmation without an enrollment
	// waiting for it (never started, or expired).
	ErrNoPendingEnrollment = errors.New("moat/stepup: no pending enrollment")
	// ErrInvalidConfig reports a configuration refused at construction.
	ErrInvalidConfig = errors.New("moat/stepup: invalid configuration")
	// ErrInvalidPolicy reports a step-up policy refused at construction.
	ErrInvalidPolicy = errors.New("moat/stepup: invalid step-up policy")
	// ErrInvalidPIN reports a PIN that does not meet the PIN rules.
	ErrInvalidPIN = errors.New("moat/stepup: PIN does not meet the rules")
	// ErrInvalidKey reports a device key that is not an ECDSA P-256 public
	// key, or a biometry value moat does not know.
	ErrInvalidKey = errors.New("moat/stepup: invalid device key")
	// ErrUnsealed reports a sealed value that does not open: tampered,
	// sealed under another key, or bound to other associated data.
	ErrUnsealed = errors.New("moat/stepup: sealed value does not open")
)

// BlockedError reports an account blocked until a given time. It matches
// [ErrBlocked] with errors.Is.
type BlockedError struct {
	Until time.Time
}

func (e *BlockedError) Error() string {
	return "moat/stepup: too many failed attempts; blocked until " + e.Until.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }
