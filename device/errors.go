package device

import (
	"errors"
	"net/http"
)

var (
	// ErrNotFound reports a device, app record or policy the store does
	// not hold.
	ErrNotFound = errors.New("moat/device: not found")
	// ErrInvalid reports an argument that cannot be stored or acted on: an
	// empty or oversized id, an unknown status, a change without an actor
	// or a reason. The wrapping error names the field.
	ErrInvalid = errors.New("moat/device: invalid argument")
	// ErrInvalidPolicy reports a version policy that does not validate: a
	// malformed minimum or blocked version, an unknown action, a download
	// URL with a scheme other than https, itms-apps or market.
	ErrInvalidPolicy = errors.New("moat/device: invalid version policy")
	// ErrMalformedVersion reports a version string that is not a semantic
	// version (see [ParseVersion]).
	ErrMalformedVersion = errors.New("moat/device: malformed version")
	// ErrBlocked refuses to unregister a device that is blocked (or has an
	// app blocked on it): forgetting it would lift the block. Set it Active
	// first if that is what you mean.
	ErrBlocked = errors.New("moat/device: device or an app on it is blocked; unregistering would lift the block")
	// ErrFull reports that an in-memory store reached one of its limits.
	// The write is refused rather than dropping records.
	ErrFull = errors.New("moat/device: store is full")
	// ErrNotPropagated reports a change that was stored and took effect in
	// this process, but whose invalidation could not be published to other
	// instances: they see it when their cache entries expire (CacheTTL).
	ErrNotPropagated = errors.New("moat/device: change stored but not propagated to other instances")
	// ErrUnauthorized is returned by an [Authorizer] for a request that
	// carries no valid operator credentials (answered 401).
	ErrUnauthorized = errors.New("moat/device: operator not authenticated")
	// ErrForbidden is returned by an [Authorizer] for an operator who may
	// not perform the operation (answered 403).
	ErrForbidden = errors.New("moat/device: operation not permitted")
	// ErrMalformedNotice reports a notice header that [ParseNotice] cannot
	// read.
	ErrMalformedNotice = errors.New("moat/device: malformed notice header")
)

// Error codes of refusals, as sent in the "error" member of the JSON body.
const (
	// CodeDeviceBlocked refuses a device that is lost, stolen, disabled or
	// unknown to the registry (never registered, or unregistered: the app
	// should register again), or an app disabled on that device.
	CodeDeviceBlocked = "device_blocked"
	// CodeAppVersionBlocked refuses an app version that the version policy
	// blocks.
	CodeAppVersionBlocked = "app_version_blocked"
)

// Refusal is the error [Control.Check] and [Control.Register] return when
// device status or version policy refuses a client. Hosts map it to their
// own error type; [Control.Middleware] writes it as
//
//	HTTP/1.1 403 Forbidden
//	{"error": "app_version_blocked", "error_description": "...",
//	 "message": "...", "download_url": "..."}
type Refusal struct {
	// Status is the HTTP status to answer with (403).
	Status int
	// Code is CodeDeviceBlocked or CodeAppVersionBlocked.
	Code string
	// Description is a short English explanation for developers
	// (error_description). It never says more than the code and the
	// status of the device.
	Description string
	// Message is the operator's message for the user, in the language the
	// request's Accept-Language chose, or "" when there is none.
	Message string
	// DownloadURL is where the user gets an allowed version, or "".
	DownloadURL string
}

func (r *Refusal) Error() string {
	return "moat/device: refused: " + r.Code + ": " + r.Description
}

// Extra returns the members a JSON error body carries beside error and
// error_description: "message" and "download_url" when set. It returns a
// new map on each call.
func (r *Refusal) Extra() map[string]any {
	m := make(map[string]any, 2)
	if r.Message != "" {
		m["message"] = r.Message
	}
	if r.DownloadURL != "" {
		m["download_url"] = r.DownloadURL
	}
	return m
}

func newRefusal(code, description, message, url string) *Refusal {
	return &Refusal{Status: http.StatusForbidden, Code: code, Description: description, Message: message, DownloadURL: url}
}
