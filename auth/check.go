package auth

import (
	"context"
	"encoding/json"
	"time"
)

// Check is a security check: a step the Authorization Challenge Endpoint
// runs before it grants a scope (a password, a one-time code, a device-key
// signature, an application check). Package stepup implements the usual
// factors; any type with these two methods can be registered.
//
// The framework calls Authorize when the check's success does not hold
// already. The first call for a session carries no answer; the check then
// usually answers CheckChallenge with what the client must do. Follow-up
// calls carry the client's answer for this check.
type Check interface {
	// Name is the check's name: the key of its challenge and answer in the
	// protocol, and what scopes and acr values map to. It must be stable.
	Name() string
	// Authorize evaluates the check. An error means the check could not
	// decide (a store or sender failure): the request is refused with 503.
	Authorize(ctx context.Context, req *CheckRequest) (CheckResult, error)
}

// CheckRequest is what a check is given.
type CheckRequest struct {
	// Client is the registered client asking for authorization.
	Client *Client
	// Subject is the user established by an earlier check in this auth
	// session ("" when none yet). A check that needs a user (an SMS code
	// sent to the user's phone) refuses without one.
	Subject string
	// Answer is the client's answer for this check, or nil when the client
	// sent none (the first request, or answers for other checks only).
	Answer json.RawMessage
	// SessionID identifies the auth session (not its secret value): stable
	// across the follow-up requests of one session, so a check can keep a
	// pending challenge per session.
	SessionID string
	// Now is the time the request is evaluated at.
	Now time.Time
}

// CheckStatus is the outcome of one Authorize call. The zero value is not
// a valid outcome: the framework treats it as an internal error and refuses.
type CheckStatus int

const (
	// CheckSuccess: the check passed.
	CheckSuccess CheckStatus = iota + 1
	// CheckChallenge: the client must answer CheckResult.Challenge (after a
	// wrong answer too; the challenge then says what went wrong and how
	// many attempts are left).
	CheckChallenge
	// CheckBlocked: too many failures; the check refuses every answer,
	// right or wrong, until CheckResult.BlockedUntil. Answered with 403.
	CheckBlocked
	// CheckRefused: the check refuses for good in this session (unknown
	// account, disabled user). Answered with 403 access_denied.
	CheckRefused
)

// String returns the status name.
func (s CheckStatus) String() string {
	switch s {
	case CheckSuccess:
		return "success"
	case CheckChallenge:
		return "challenge"
	case CheckBlocked:
		return "blocked"
	case CheckRefused:
		return "refused"
	}
	return "invalid"
}

// CheckResult is what a check decided.
type CheckResult struct {
	Status CheckStatus

	// Challenge is sent to the client as challenges[<name>] (CheckChallenge).
	// It must be JSON-encodable and must never contain a secret the client
	// should prove it knows.
	Challenge any

	// Subject is the user this check identified (CheckSuccess). A check
	// that does not identify users leaves it empty. If it names a user other
	// than the session's established subject, the framework refuses.
	Subject string
	// AMR lists the RFC 8176 authentication method references this success
	// contributes ("pwd", "sms", "otp", "hwk", "fpt", ...).
	AMR []string
	// ValidFor is how long the success holds (CheckSuccess): later
	// authorizations within it skip the check, and access tokens it granted
	// expire no later than it. It must be positive.
	ValidFor time.Duration

	// BlockedUntil is when a blocked check accepts answers again.
	BlockedUntil time.Time

	// Reason is a machine-readable reason for a challenge after a failure,
	// a block or a refusal ("wrong_code", "expired", "locked"). Never
	// secret: it reaches logs, analytics and the client.
	Reason string
}
