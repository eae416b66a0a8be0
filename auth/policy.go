package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Registration is a client's registration request, as the registration
// policy sees it. The server has already checked the request's shape, the
// key and the single-use server nonce.
type Registration struct {
	AppID      string
	AppVersion string
	Platform   string
	Channel    string
	DeviceID   string
	// KeyThumbprint is the RFC 7638 thumbprint of the key being registered.
	KeyThumbprint string
	// Nonce is the server nonce the client obtained and the server has
	// consumed; an attestation must commit to it and to KeyThumbprint.
	Nonce string
	// Attestation is the client's attestation object as sent (JSON), or nil.
	Attestation json.RawMessage
	// AcceptLanguage is the request's Accept-Language header, for the
	// language of a refusal's message.
	AcceptLanguage string
}

// RegistrationPolicy decides whether a client may register. It runs at
// registration; when it also implements [ClientPolicy] and
// Config.ClientPolicy is nil, the server asks it again at every
// authorization, refresh and introspection.
type RegistrationPolicy interface {
	// AllowRegistration returns nil to accept, a *Refusal to refuse with
	// that error, or another error when it could not decide (refused with
	// 503). It may fill facts (attestation verdict, trustworthy version)
	// into the client that will be stored.
	AllowRegistration(ctx context.Context, reg *Registration, client *Client) error
}

// ClientPolicy decides whether a registered client may go on: at every
// token refresh and, through the resource middleware, on every protected
// request. Device status and app-version policy implement it.
type ClientPolicy interface {
	// AllowClient returns nil, a *Refusal, or another error (503).
	AllowClient(ctx context.Context, client *Client) error
}

// Refusal is a policy's "no", answered with its HTTP status and OAuth-style
// error code (device_blocked, app_version_blocked, invalid_attestation...).
// Extra members (message, download_url) are added to the JSON body.
type Refusal struct {
	// Status is the HTTP status; zero means 403.
	Status      int
	Code        string
	Description string
	Extra       map[string]any
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("moat/auth: refused: %s: %s", r.Code, r.Description)
}

// HTTPStatus returns the status to answer with.
func (r *Refusal) HTTPStatus() int {
	if r.Status == 0 {
		return http.StatusForbidden
	}
	return r.Status
}

// RegistrationPolicies runs several policies in order; the first refusal
// or error wins.
type RegistrationPolicies []RegistrationPolicy

var _ RegistrationPolicy = RegistrationPolicies(nil)

// AllowRegistration implements [RegistrationPolicy].
func (ps RegistrationPolicies) AllowRegistration(ctx context.Context, reg *Registration, c *Client) error {
	for _, p := range ps {
		if err := p.AllowRegistration(ctx, reg, c); err != nil {
			return err
		}
	}
	return nil
}

// ClientPolicies runs several client policies in order; the first refusal
// or error wins.
type ClientPolicies []ClientPolicy

var _ ClientPolicy = ClientPolicies(nil)

// AllowClient implements [ClientPolicy].
func (ps ClientPolicies) AllowClient(ctx context.Context, c *Client) error {
	for _, p := range ps {
		if err := p.AllowClient(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
