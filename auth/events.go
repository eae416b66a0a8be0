package auth

import (
	"context"
	"time"
)

// Event kinds reported through Config.OnEvent.
const (
	EventRegistration        = "registration"
	EventRegistrationRefused = "registration_refused"
	EventChallengeIssued     = "challenge_issued"
	EventChallengeAnswered   = "challenge_answered"
	EventChallengeFailed     = "challenge_failed"
	EventCheckBlocked        = "check_blocked"
	EventCheckRefused        = "check_refused"
	EventStepUpCompleted     = "step_up_completed"
	EventTokenIssued         = "token_issued"
	EventRefreshRefused      = "refresh_refused"
	EventRefreshReuse        = "refresh_token_reuse"
	EventClientRefused       = "client_refused"
	EventRevocation          = "revocation"
	EventLogout              = "logout"
)

// Event is a security outcome the server reports to Config.OnEvent (the
// root Stack forwards them to analytics). It never carries a secret: no
// token, code, answer or session value.
type Event struct {
	Kind string
	Time time.Time
	// Client is the client concerned, when known. Treat it as read-only.
	Client *Client
	// Subject is the user concerned, when known (token_issued). It is an
	// identifier, not a secret, but still personal data: hooks that
	// export events should pseudonymize or drop it.
	Subject string
	// Check is the security check concerned, if any.
	Check string
	// Reason is a machine-readable reason ("wrong_code", "device_blocked").
	Reason string
	// ACR is the acr value of a token or a step-up, if any.
	ACR string
}

func (s *Server) emit(ctx context.Context, e Event) {
	if s.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	s.cfg.OnEvent(ctx, e)
}
