package auth

import (
	"context"
	"slices"
	"time"
)

// Principal is who is calling a protected API, as established by the
// access token and its DPoP proof. The resource middleware puts it in the
// request context; read it with [PrincipalFrom].
type Principal struct {
	ClientID   string
	AppID      string
	AppVersion string
	Platform   string
	Channel    string
	DeviceID   string
	// Subject is the user, or "" for a token no user authorized (a
	// confidential client's client_credentials token).
	Subject string
	// Scope lists the granted scope elements.
	Scope []string
	// ACR is the authentication context class the token carries.
	ACR string
	// AMR lists the authentication methods used (RFC 8176).
	AMR []string
	// AuthTime is when the user last actively authenticated.
	AuthTime time.Time
	// AMRTimes records when each method in AMR last succeeded (RFC 9470
	// max_age can then be applied per factor). May be nil.
	AMRTimes map[string]time.Time
	// TokenID is the access token's jti.
	TokenID string
	// KeyThumbprint is the cnf.jkt the token is bound to ("" for a Bearer
	// token).
	KeyThumbprint string
	// Expiry is when the access token expires.
	Expiry time.Time
}

// HasScope reports whether the principal was granted scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scope, scope) }

// HasAMR reports whether the principal authenticated with method.
func (p *Principal) HasAMR(method string) bool { return slices.Contains(p.AMR, method) }

type principalKey struct{}

// PrincipalFrom returns the principal the resource middleware stored in
// ctx, if any. Treat it as read-only: the verified-token cache hands the
// same *Principal to every request made with one token, so a change (to
// Scope, say) would reach that token's later requests. Copy it to change
// it.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// ContextWithPrincipal returns a copy of ctx carrying p. The resource
// middleware calls it; tests of later stages use it to stand in for it.
func ContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
