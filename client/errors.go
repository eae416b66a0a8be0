package client

import (
	"errors"
	"fmt"
	"time"
)

// Errors that an *OAuthError matches with errors.Is, by its error code.
var (
	// ErrDeviceBlocked: the device is lost, stolen or disabled.
	ErrDeviceBlocked = errors.New("moat/client: device blocked")
	// ErrAppVersionBlocked: this app version may no longer call the API;
	// the error's Message and DownloadURL say what to do.
	ErrAppVersionBlocked = errors.New("moat/client: app version blocked")
	// ErrCheckBlocked: a security check is blocked after too many failures
	// until BlockedUntil.
	ErrCheckBlocked = errors.New("moat/client: security check blocked")
	// ErrUpdateRequired: a mandatory web-resource update must be applied.
	ErrUpdateRequired = errors.New("moat/client: update required")
	// ErrAccessDenied: a check refused the authorization.
	ErrAccessDenied = errors.New("moat/client: access denied")
)

// ErrNoHandler reports a challenge for a check the client has no handler
// for.
var ErrNoHandler = errors.New("moat/client: no handler for challenge")

// ErrNotRegistered reports a call that needs a registered client.
var ErrNotRegistered = errors.New("moat/client: not registered")

var codeErrors = map[string]error{
	"device_blocked":      ErrDeviceBlocked,
	"app_version_blocked": ErrAppVersionBlocked,
	"check_blocked":       ErrCheckBlocked,
	"update_required":     ErrUpdateRequired,
	"access_denied":       ErrAccessDenied,
}

// OAuthError is an error answer from the server: RFC 6749 / RFC 6750
// error code and description, and the whole JSON body for extra members.
type OAuthError struct {
	// Status is the HTTP status.
	Status int
	// Code is the OAuth error code ("invalid_grant", "device_blocked"...).
	Code        string
	Description string
	// Body holds every member of the JSON error body.
	Body map[string]any
}

func (e *OAuthError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("moat/client: server answered %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("moat/client: server answered %d %s: %s", e.Status, e.Code, e.Description)
}

// Is matches the sentinel errors of this package by error code.
func (e *OAuthError) Is(target error) bool {
	return codeErrors[e.Code] == target && target != nil
}

func (e *OAuthError) str(k string) string {
	s, _ := e.Body[k].(string)
	return s
}

// Message returns the operator's message for a refused device or version.
func (e *OAuthError) Message() string { return e.str("message") }

// DownloadURL returns where to get a newer app version, if the server gave
// one.
func (e *OAuthError) DownloadURL() string { return e.str("download_url") }

// Check returns the security check concerned, for blocked or refused
// checks.
func (e *OAuthError) Check() string { return e.str("check") }

// BlockedUntil returns when a blocked check unblocks (zero if unknown).
func (e *OAuthError) BlockedUntil() time.Time {
	t, _ := time.Parse(time.RFC3339, e.str("blocked_until"))
	return t
}
