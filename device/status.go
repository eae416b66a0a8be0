package device

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Status is the state an operator puts a device in, or an app on one
// device in.
type Status string

// Statuses. A whole device may be in any of them; an app on a device is
// only ever Active or Disabled. Every status but Active refuses the device
// (or the app on it) with [CodeDeviceBlocked]. All changes are reversible.
const (
	Active   Status = "active"
	Lost     Status = "lost"
	Stolen   Status = "stolen"
	Disabled Status = "disabled"
)

// Valid reports whether s is one of the four device statuses.
func (s Status) Valid() bool {
	switch s {
	case Active, Lost, Stolen, Disabled:
		return true
	}
	return false
}

// Device is one device as the registry knows it.
type Device struct {
	ID       string `json:"id"`
	Platform string `json:"platform,omitempty"`
	// Model, OSVersion and DisplayName are what the app reported, if
	// anything ("iPhone15,2", "17.4", "Ana's phone").
	Model       string `json:"model,omitempty"`
	OSVersion   string `json:"os_version,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	// Status is the whole device's status; a new device is Active.
	Status Status `json:"status"`
	// Users lists the users seen on the device, most recent first, at
	// most [MaxUsersPerDevice].
	Users []string `json:"users,omitempty"`
	// Apps lists the apps seen on the device, sorted by AppID.
	Apps      []App     `json:"apps,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// App is what the registry knows of one app on one device.
type App struct {
	AppID string `json:"app_id"`
	// AppVersion is the version the app last reported.
	AppVersion string `json:"app_version,omitempty"`
	// Status is Active or Disabled (the app is refused on this device).
	Status    Status    `json:"status"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// State is what enforcement needs to know about a device and one app on
// it; [Registry.State] reads it in one call.
type State struct {
	// Status is the device's status.
	Status Status
	// AppStatus is the app's status on the device: Active when the
	// registry has no record of the app there.
	AppStatus Status
}

// Limits every store must accept and the in-memory store enforces.
const (
	// MaxIDLen bounds device ids, app ids, platforms, user ids and client
	// ids.
	MaxIDLen = 256
	// MaxTextLen bounds model, OS version, display name, actor and reason.
	MaxTextLen = 1024
	// MaxUsersPerDevice is how many users a device remembers.
	MaxUsersPerDevice = 32
	// MaxAppsPerDevice is how many apps one device record holds.
	MaxAppsPerDevice = 256
)

// checkID validates an identifier: non-empty, at most MaxIDLen bytes of
// UTF-8 without control characters.
func checkID(field, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	}
	return checkText(field, s, MaxIDLen)
}

// checkText validates optional text: at most max bytes of UTF-8 without
// control characters.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
		}
	}
	return nil
}
