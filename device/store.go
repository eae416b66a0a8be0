package device

import (
	"context"
	"fmt"
	"time"
)

// Registry holds devices and the apps seen on them. Implementations are
// safe for concurrent use; every method takes a context first and a
// cancelled context changes nothing.
type Registry interface {
	// Seen records a sighting of an app on a device: it creates the device
	// (Active) or app record on first sight, moves LastSeen forward, puts
	// UserID first in the device's users, and overwrites Platform, Model,
	// OSVersion, DisplayName and AppVersion with the non-empty values it
	// carries. It is atomic per device: concurrent sightings of one device
	// lose no user and no app.
	Seen(ctx context.Context, s Sighting) error

	// State returns the status of deviceID and of appID on it, or
	// ErrNotFound when the device is unknown. An app without a record on
	// the device (or appID "") is Active.
	State(ctx context.Context, deviceID, appID string) (State, error)

	// Device returns one device with its apps, or ErrNotFound.
	Device(ctx context.Context, id string) (Device, error)

	// Search returns the devices matching q, ordered by id.
	Search(ctx context.Context, q Query) (Page, error)
}

// StatusLog changes device statuses and keeps the audit trail of every
// change. Each change and its audit entry are stored together or not at
// all.
type StatusLog interface {
	// SetStatus sets the status of a device (AppID "") or of an app on it,
	// records an audit entry whose From is the status it replaced, and
	// returns that entry. ErrNotFound when the device (or the app record)
	// is unknown.
	SetStatus(ctx context.Context, c StatusChange) (AuditEntry, error)

	// Unregister removes a device and its app records from the registry,
	// records an audit entry (From is the status it had) and returns it.
	// ErrNotFound when the device is unknown; ErrBlocked, changing nothing,
	// when the device or an app on it is not Active, since removing the
	// record would lift the block. It cannot be undone; the audit trail
	// keeps the device's past entries.
	Unregister(ctx context.Context, u Unregistration) (AuditEntry, error)

	// Audit lists audit entries (status changes, unregistrations, policy
	// changes) matching q, newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// PolicyStore holds app-version policies, one per app and platform.
type PolicyStore interface {
	// Policy returns the policy of appID on platform, or ErrNotFound.
	Policy(ctx context.Context, appID, platform string) (Policy, error)

	// Policies returns every policy, ordered by app id then platform.
	Policies(ctx context.Context) ([]Policy, error)

	// SetPolicy validates and stores c.Policy (replacing the previous one),
	// with UpdatedAt and UpdatedBy taken from the change, and records an
	// audit entry carrying the new policy.
	SetPolicy(ctx context.Context, c PolicyChange) (AuditEntry, error)

	// DeletePolicy removes a policy and records an audit entry carrying
	// the removed policy. Removing a missing policy is not an error: it
	// records nothing and returns the zero entry.
	DeletePolicy(ctx context.Context, r PolicyRemoval) (AuditEntry, error)
}

// Store is everything [Control] keeps durably. [Memory] implements it;
// PostgreSQL implements it in github.com/moatsec/moat/stores/postgres. The
// package devicetest holds every implementation to this contract.
type Store interface {
	Registry
	StatusLog
	PolicyStore
}

// Sighting is one observation of an app on a device.
type Sighting struct {
	DeviceID string
	// Platform, AppID, AppVersion, Model, OSVersion, DisplayName and UserID
	// are optional; empty ones leave what the registry knows.
	Platform    string
	AppID       string
	AppVersion  string
	Model       string
	OSVersion   string
	DisplayName string
	UserID      string
	// At is when the device was seen.
	At time.Time
}

// Validate checks the sighting's fields against the registry's limits.
func (s Sighting) Validate() error {
	if err := checkID("device id", s.DeviceID); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"platform", s.Platform}, {"app id", s.AppID}, {"user id", s.UserID},
	} {
		if err := checkText(f.name, f.v, MaxIDLen); err != nil {
			return err
		}
	}
	if err := checkText("app version", s.AppVersion, MaxVersionLen); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"model", s.Model}, {"os version", s.OSVersion}, {"display name", s.DisplayName},
	} {
		if err := checkText(f.name, f.v, MaxTextLen); err != nil {
			return err
		}
	}
	return checkTime(s.At)
}

// Query selects devices. Empty fields do not filter.
type Query struct {
	// UserID matches devices on which this user was seen (exact).
	UserID string
	// Name matches devices whose display name contains it, ignoring case.
	Name string
	// Status matches devices in this status.
	Status Status
	// AppID matches devices on which this app was seen.
	AppID string
	// After continues a listing: only ids greater than it are returned
	// (Page.Next of the previous page).
	After string
	// Limit bounds the page: zero means DefaultPageSize; it is capped at
	// MaxPageSize.
	Limit int
}

// Page sizes for Search and Audit.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageLimit returns the number of results a query with limit n returns
// at most.
func PageLimit(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return min(n, MaxPageSize)
}

// Page is one page of search results.
type Page struct {
	Devices []Device `json:"devices"`
	// Next is the Query.After of the next page, or "" at the end.
	Next string `json:"next,omitempty"`
}

// Attribution fields (Actor, Reason, At) are required on every change.

// StatusChange sets the status of a device or of one app on it.
type StatusChange struct {
	DeviceID string
	// AppID, when set, changes the app's status on the device (Active or
	// Disabled) instead of the device's.
	AppID  string
	Status Status
	// Actor is who made the change (an operator name or id).
	Actor string
	// Reason is why ("reported stolen by the owner, ticket 4411").
	Reason string
	// At is when.
	At time.Time
}

// Validate checks the change.
func (c StatusChange) Validate() error {
	if err := checkID("device id", c.DeviceID); err != nil {
		return err
	}
	if err := checkText("app id", c.AppID, MaxIDLen); err != nil {
		return err
	}
	switch {
	case !c.Status.Valid():
		return fmt.Errorf("%w: unknown status %q", ErrInvalid, c.Status)
	case c.AppID != "" && c.Status != Active && c.Status != Disabled:
		return fmt.Errorf("%w: an app on a device is active or disabled, not %s", ErrInvalid, c.Status)
	}
	return checkAttribution(c.Actor, c.Reason, c.At)
}

// Unregistration unregisters a device.
type Unregistration struct {
	DeviceID string
	Actor    string
	Reason   string
	At       time.Time
}

// Validate checks the unregistration.
func (u Unregistration) Validate() error {
	if err := checkID("device id", u.DeviceID); err != nil {
		return err
	}
	return checkAttribution(u.Actor, u.Reason, u.At)
}

// PolicyChange sets a version policy.
type PolicyChange struct {
	Policy Policy
	Actor  string
	Reason string
	At     time.Time
}

// Validate checks the change and its policy.
func (c PolicyChange) Validate() error {
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	return checkAttribution(c.Actor, c.Reason, c.At)
}

// PolicyRemoval removes a version policy.
type PolicyRemoval struct {
	AppID    string
	Platform string
	Actor    string
	Reason   string
	At       time.Time
}

// Validate checks the removal.
func (r PolicyRemoval) Validate() error {
	if err := checkID("app id", r.AppID); err != nil {
		return err
	}
	if err := checkID("platform", r.Platform); err != nil {
		return err
	}
	return checkAttribution(r.Actor, r.Reason, r.At)
}

func checkAttribution(actor, reason string, at time.Time) error {
	if err := checkID("actor", actor); err != nil {
		return err
	}
	if reason == "" {
		return fmt.Errorf("%w: a change needs a reason", ErrInvalid)
	}
	if err := checkText("reason", reason, MaxTextLen); err != nil {
		return err
	}
	return checkTime(at)
}

func checkTime(at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: time is zero", ErrInvalid)
	}
	return nil
}

// AuditAction names what an audit entry records.
type AuditAction string

// Audit actions.
const (
	AuditSetStatus    AuditAction = "set_status"
	AuditUnregister   AuditAction = "unregister"
	AuditSetPolicy    AuditAction = "set_policy"
	AuditDeletePolicy AuditAction = "delete_policy"
)

// AuditEntry records one change: who, when, why and what.
type AuditEntry struct {
	// Seq orders entries; the store assigns it, increasing with each
	// entry.
	Seq    uint64      `json:"seq"`
	Action AuditAction `json:"action"`
	At     time.Time   `json:"at"`
	Actor  string      `json:"actor"`
	Reason string      `json:"reason"`
	// DeviceID is set for status changes and unregistrations; AppID for
	// app status changes and policy changes; Platform for policy changes.
	DeviceID string `json:"device_id,omitempty"`
	AppID    string `json:"app_id,omitempty"`
	Platform string `json:"platform,omitempty"`
	// From and To are the statuses before and after a status change.
	From Status `json:"from,omitempty"`
	To   Status `json:"to,omitempty"`
	// Policy is the new policy (set_policy) or the removed one
	// (delete_policy).
	Policy *Policy `json:"policy,omitempty"`
}

// AuditQuery selects audit entries. Empty fields do not filter.
type AuditQuery struct {
	// DeviceID matches entries about this device.
	DeviceID string
	// AppID matches entries about this app (app status changes and policy
	// changes).
	AppID string
	// Before continues a listing: only entries with a smaller Seq.
	Before uint64
	// Limit bounds the result: zero means DefaultPageSize; it is capped at
	// MaxPageSize.
	Limit int
}
