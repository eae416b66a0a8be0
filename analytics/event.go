package analytics

import (
	"fmt"
	"time"
)

// Caller is who made a call or caused a security outcome, as the host
// application knows it (in moat, from the authenticated principal). It is
// input only: the recorder keeps DeviceID solely as a keyed pseudonym and
// never stores, exports or shows it raw.
//
// Every field is client-declared data and is treated as untrusted: the
// recorder cuts each to [MaxLabelLen] bytes and passes it through [Scrub].
type Caller struct {
	AppID       string
	AppVersion  string
	Platform    string
	Channel     string
	DeviceModel string
	OSVersion   string
	// DeviceID is the raw device identifier. It is turned into
	// [Source.Device] with HMAC-SHA256 under [Config.DeviceKey].
	DeviceID string
}

// IsZero reports whether c carries no information.
func (c Caller) IsZero() bool { return c == Caller{} }

// Source is the recorded form of a [Caller]: the same fields, cleaned, with
// the device identifier replaced by its pseudonym.
type Source struct {
	AppID       string `json:"app,omitempty"`
	AppVersion  string `json:"app_version,omitempty"`
	Platform    string `json:"platform,omitempty"`
	Channel     string `json:"channel,omitempty"`
	DeviceModel string `json:"device_model,omitempty"`
	OSVersion   string `json:"os_version,omitempty"`
	// Device is the pseudonym of the caller's device id: "d_" followed by
	// 22 base64url characters (128 bits of HMAC-SHA256 under the
	// recorder's key), or "" when the caller had none. The same device gets
	// the same pseudonym for as long as the key stays the same.
	Device string `json:"device,omitempty"`
}

// Call is one recorded API call. It never holds a raw path, a query string,
// a header or a body: only the route pattern that served the call.
type Call struct {
	Time time.Time `json:"time"`
	Source
	// Route is the pattern of the route that served the call ("GET
	// /trips/{id}"), or [RouteUnmatched] when no pattern was learned.
	Route string `json:"route"`
	// Method is the request method, one of the standard methods or "OTHER".
	Method string `json:"method"`
	// Status is the HTTP status answered (500 when the handler panicked).
	Status int `json:"status"`
	// Duration is how long the call took inside the recorder.
	Duration time.Duration `json:"duration_ns"`
	// BytesIn is the request's declared Content-Length (0 when unknown).
	BytesIn int64 `json:"bytes_in"`
	// BytesOut counts the response body bytes written.
	BytesOut int64 `json:"bytes_out"`
}

// RouteUnmatched labels calls whose route pattern the recorder could not
// learn. The raw path is never used in its place.
const RouteUnmatched = "unmatched"

// Security is one recorded security outcome.
type Security struct {
	Time time.Time `json:"time"`
	Source
	Kind Kind `json:"kind"`
	// Name is the check, policy or component concerned ("password",
	// "sms", "version-policy", a pinned host, an update channel).
	Name string `json:"name,omitempty"`
	// Reason is the machine-readable reason code ("wrong_code",
	// "locked", "lost", "below_minimum").
	Reason string `json:"reason,omitempty"`
}

// SecurityEvent is what a security hook reports to [Recorder.Security].
type SecurityEvent struct {
	Kind Kind
	// Caller is who caused the outcome. When it is zero and the context
	// passed to [Recorder.Security] belongs to a request that a
	// [Recorder.Middleware] is recording, the caller set for that request
	// (by [SetCaller] or [Recorder.Annotate]) is used.
	Caller Caller
	// Name is the check or policy name. Never secret.
	Name string
	// Reason is the machine-readable reason code. Never secret.
	Reason string
}

// Kind is the kind of a security outcome.
type Kind uint8

// The security outcomes the recorder knows. The zero Kind is invalid and
// is recorded as "unknown".
const (
	// RegistrationAccepted: a client registered.
	RegistrationAccepted Kind = iota + 1
	// RegistrationRefused: the registration policy refused a client.
	RegistrationRefused
	// ChallengeIssued: a security check sent a challenge.
	ChallengeIssued
	// ChallengeAnswered: a challenge was answered correctly (the check
	// succeeded).
	ChallengeAnswered
	// ChallengeFailed: a challenge was answered wrongly.
	ChallengeFailed
	// CheckBlocked: a check refused because of too many failures.
	CheckBlocked
	// StepUpDemanded: a resource demanded a stronger authentication.
	StepUpDemanded
	// StepUpCompleted: the client completed a step-up.
	StepUpCompleted
	// DeviceRefused: a lost, stolen or disabled device was refused.
	DeviceRefused
	// VersionRefused: a blocked app version was refused.
	VersionRefused
	// AttestationPassed: an attestation was verified.
	AttestationPassed
	// AttestationFailed: an attestation failed verification.
	AttestationFailed
	// PinViolation: a client reported a certificate pinning violation.
	PinViolation
	// UpdateApplied: a client applied a web-resource update.
	UpdateApplied

	kindCount = iota + 1 // number of kinds including the invalid zero
)

var kindNames = [kindCount]string{
	"unknown",
	"registration_accepted",
	"registration_refused",
	"challenge_issued",
	"challenge_answered",
	"challenge_failed",
	"check_blocked",
	"stepup_demanded",
	"stepup_completed",
	"device_refused",
	"version_refused",
	"attestation_passed",
	"attestation_failed",
	"pin_violation",
	"update_applied",
}

// Kinds lists every valid kind in order.
func Kinds() []Kind {
	ks := make([]Kind, 0, kindCount-1)
	for k := Kind(1); k < kindCount; k++ {
		ks = append(ks, k)
	}
	return ks
}

// String returns the kind's snake_case name, or "unknown".
func (k Kind) String() string {
	if k >= kindCount {
		return kindNames[0]
	}
	return kindNames[k]
}

// Refusal reports whether the outcome refused a client: a refused
// registration, a failed attestation, a blocked check, a refused device or
// version. The dashboard's "top refused devices and versions" count these.
func (k Kind) Refusal() bool {
	switch k {
	case RegistrationRefused, AttestationFailed, CheckBlocked, DeviceRefused, VersionRefused:
		return true
	}
	return false
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for k := Kind(1); k < kindCount; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownKind, s)
}

// MarshalText encodes the kind as its name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind name; "unknown" decodes to the zero Kind.
func (k *Kind) UnmarshalText(b []byte) error {
	if string(b) == kindNames[0] {
		*k = 0
		return nil
	}
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
