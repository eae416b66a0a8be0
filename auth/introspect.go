package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
	"github.com/moatsec/moat/kv"
)

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active     bool       `json:"active"`
	Scope      string     `json:"scope,omitempty"`
	ClientID   string     `json:"client_id,omitempty"`
	TokenType  string     `json:"token_type,omitempty"`
	Exp        int64      `json:"exp,omitempty"`
	Iat        int64      `json:"iat,omitempty"`
	Sub        string     `json:"sub,omitempty"`
	Aud        string     `json:"aud,omitempty"`
	Iss        string     `json:"iss,omitempty"`
	Jti        string     `json:"jti,omitempty"`
	ACR        string     `json:"acr,omitempty"`
	AMR        []string   `json:"amr,omitempty"`
	AuthTime   int64      `json:"auth_time,omitempty"`
	Cnf        *confirmed `json:"cnf,omitempty"`
	AppID      string     `json:"app_id,omitempty"`
	AppVersion string     `json:"app_version,omitempty"`
	Platform   string     `json:"platform,omitempty"`
	Channel    string     `json:"channel,omitempty"`
	DeviceID   string     `json:"device_id,omitempty"`
}

// handleIntrospect serves RFC 7662 introspection to confidential clients
// holding IntrospectScope. An access token is active only if it validates,
// is not revoked, and its client still passes the client policy (device
// status, app version): a stolen device's tokens turn inactive at once for
// resource servers that introspect.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, ok := s.readForm(w, r)
	if !ok {
		return
	}
	caller, ok := s.authenticateConfidential(w, r, form)
	if !ok {
		return
	}
	if !slices.Contains(caller.Scopes, IntrospectScope) {
		oauthError(w, http.StatusForbidden, CodeUnauthorizedClient, "this client may not introspect tokens")
		return
	}
	token := form.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "token is required")
		return
	}
	inactive := introspection{Active: false}
	if form.Get("token_type_hint") != "refresh_token" {
		if c, err := s.validator.validate(token); err == nil {
			res, err := s.introspectAccess(r.Context(), c)
			if err != nil {
				s.unavailable(w, r, "introspecting token", err)
				return
			}
			httpjson.Write(w, http.StatusOK, res)
			return
		}
	}
	g, err := s.refreshGrantFor(r.Context(), token)
	if err != nil {
		s.unavailable(w, r, "introspecting token", err)
		return
	}
	if g == nil {
		httpjson.Write(w, http.StatusOK, inactive)
		return
	}
	httpjson.Write(w, http.StatusOK, introspection{
		Active: true, Scope: strings.Join(g.Scope, " "), ClientID: g.ClientID, TokenType: "refresh_token",
		Exp: g.FamilyExpires, Sub: g.Subject, Iss: s.cfg.Issuer, ACR: g.ACR, AMR: g.AMR, AuthTime: g.AuthTime,
	})
}

func (s *Server) introspectAccess(ctx context.Context, c *accessClaims) (introspection, error) {
	revoked, err := s.jtiRevoked(ctx, c.ID)
	if err != nil || revoked {
		return introspection{}, err
	}
	client, err := s.cfg.Clients.Client(ctx, c.ClientID)
	if errors.Is(err, ErrNotFound) {
		return introspection{}, nil
	}
	if err != nil {
		return introspection{}, err
	}
	if s.cfg.ClientPolicy != nil && !client.Confidential {
		if err := s.cfg.ClientPolicy.AllowClient(ctx, client); err != nil {
			var ref *Refusal
			if errors.As(err, &ref) {
				return introspection{}, nil
			}
			return introspection{}, err
		}
	}
	tt := "Bearer"
	if c.Cnf != nil {
		tt = "DPoP"
	}
	return introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: tt, Exp: c.Expiry, Iat: c.IssuedAt,
		Sub: c.Subject, Aud: s.cfg.Audience, Iss: c.Issuer, Jti: c.ID, ACR: c.ACR, AMR: c.AMR,
		AuthTime: c.AuthTime, Cnf: c.Cnf, AppID: c.AppID, AppVersion: c.AppVersion,
		Platform: c.Platform, Channel: c.Channel, DeviceID: c.DeviceID,
	}, nil
}

// refreshGrantFor returns the grant of a live, unused, unrevoked refresh
// token, or nil.
func (s *Server) refreshGrantFor(ctx context.Context, token string) (*grant, error) {
	if token == "" || len(token) > 128 {
		return nil, nil
	}
	var g grant
	found, _, err := s.getJSON(ctx, keyRefresh+sha256b64(token), &g)
	if err != nil || !found || g.Used {
		return nil, err
	}
	revoked, err := s.familyRevoked(ctx, g.Family)
	if err != nil || revoked {
		return nil, err
	}
	return &g, nil
}

func (s *Server) jtiRevoked(ctx context.Context, jti string) (bool, error) {
	_, err := s.cfg.Store.Get(ctx, keyRevokedJTI+jti)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// revokeAccessToken records an access token's jti as revoked until it
// expires.
func (s *Server) revokeAccessToken(ctx context.Context, c *accessClaims) error {
	ttl := time.Unix(c.Expiry, 0).Sub(s.cfg.Now()) + time.Minute
	if ttl <= 0 {
		return nil
	}
	_, err := s.cfg.Store.Set(ctx, keyRevokedJTI+c.ID, []byte("1"), ttl)
	return err
}

// callerClient authenticates the caller of revocation or logout: a
// confidential client by its secret, or a public client by a DPoP proof
// signed with its registered key. On failure it has answered.
func (s *Server) callerClient(w http.ResponseWriter, r *http.Request, form url.Values, endpoint string) (*Client, bool) {
	if r.Header.Get("DPoP") == "" {
		return s.authenticateConfidential(w, r, form)
	}
	proof, ok := s.verifyProof(w, r, endpoint)
	if !ok {
		return nil, false
	}
	id := form.Get("client_id")
	if id == "" {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "client_id is required")
		return nil, false
	}
	client, err := s.cfg.Clients.Client(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		oauthError(w, http.StatusUnauthorized, CodeInvalidClient, "unknown client")
		return nil, false
	}
	if err != nil {
		s.unavailable(w, r, "loading client", err)
		return nil, false
	}
	if client.Confidential || client.KeyThumbprint != proof.KeyThumbprint {
		oauthError(w, http.StatusUnauthorized, CodeInvalidClient, "the DPoP proof is not signed by the client's registered key")
		return nil, false
	}
	return client, true
}

// handleRevoke serves RFC 7009 revocation. Revoking a refresh token
// revokes its whole family; revoking an access token records its jti until
// it expires. Tokens that are unknown or belong to another client are
// answered 200 without effect, as RFC 7009 §2.2 asks.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	values, ok := s.readForm(w, r)
	if !ok {
		return
	}
	client, ok := s.callerClient(w, r, values, s.endpoints.revoke)
	if !ok {
		return
	}
	token := values.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "token is required")
		return
	}
	ctx := r.Context()
	if c, err := s.validator.validate(token); err == nil {
		if c.ClientID == client.ID {
			if err := s.revokeAccessToken(ctx, c); err != nil {
				s.unavailable(w, r, "revoking token", err)
				return
			}
			s.emit(ctx, Event{Kind: EventRevocation, Client: client, Reason: "access_token"})
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	g, err := s.refreshGrantFor(ctx, token)
	if err != nil {
		s.unavailable(w, r, "revoking token", err)
		return
	}
	if g != nil && g.ClientID == client.ID {
		if err := s.revokeFamily(ctx, g.Family, g.FamilyExpires); err != nil {
			s.unavailable(w, r, "revoking token", err)
			return
		}
		s.emit(ctx, Event{Kind: EventRevocation, Client: client, Reason: "refresh_token"})
	}
	w.WriteHeader(http.StatusOK)
}

type logoutRequest struct {
	ClientID     string `json:"client_id"`
	AuthSession  string `json:"auth_session,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// handleLogout signs a client out: it forgets every check success of the
// client (and the SSO-group successes its app shares, which ends the
// sign-in for the group's other apps on the device), ends the auth
// session, revokes the refresh-token family given, and revokes the access
// token in the Authorization header. Other access tokens already issued
// stay valid until they expire (at most AccessTokenTTL), but no refresh
// can renew them, because refreshing needs the checks' successes.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req logoutRequest
	if err := httpjson.Read(w, r, s.cfg.MaxBodySize, &req); err != nil {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
		return
	}
	if r.Header.Get("DPoP") == "" {
		oauthError(w, http.StatusBadRequest, CodeInvalidDPoPProof, "logout needs a DPoP proof")
		return
	}
	client, ok := s.callerClient(w, r, url.Values{"client_id": {req.ClientID}}, s.endpoints.logout)
	if !ok {
		return
	}
	if err := s.clearSuccess(ctx, client); err != nil {
		s.unavailable(w, r, "signing out", err)
		return
	}
	if req.AuthSession != "" {
		if sess, err := s.loadSession(ctx, req.AuthSession); err != nil {
			s.unavailable(w, r, "signing out", err)
			return
		} else if sess != nil && sess.ClientID == client.ID {
			if err := s.cfg.Store.Delete(ctx, keySession+sha256b64(req.AuthSession)); err != nil {
				s.unavailable(w, r, "signing out", err)
				return
			}
		}
	}
	if req.RefreshToken != "" {
		g, err := s.refreshGrantFor(ctx, req.RefreshToken)
		if err != nil {
			s.unavailable(w, r, "signing out", err)
			return
		}
		if g != nil && g.ClientID == client.ID {
			if err := s.revokeFamily(ctx, g.Family, g.FamilyExpires); err != nil {
				s.unavailable(w, r, "signing out", err)
				return
			}
		}
	}
	if _, cred := authScheme(r); cred != "" {
		if c, err := s.validator.validate(cred); err == nil && c.ClientID == client.ID {
			if err := s.revokeAccessToken(ctx, c); err != nil {
				s.unavailable(w, r, "signing out", err)
				return
			}
		}
	}
	s.emit(ctx, Event{Kind: EventLogout, Client: client})
	w.WriteHeader(http.StatusNoContent)
}

// discovery is the RFC 8414 metadata document.
type discovery struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationChallengeEndpoint   string   `json:"authorization_challenge_endpoint"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	RegistrationEndpoint             string   `json:"registration_endpoint"`
	IntrospectionEndpoint            string   `json:"introspection_endpoint"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	NonceEndpoint                    string   `json:"nonce_endpoint"`
	LogoutEndpoint                   string   `json:"logout_endpoint"`
	ScopesSupported                  []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	GrantTypesSupported              []string `json:"grant_types_supported"`
	TokenEndpointAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	DPoPSigningAlgValuesSupported    []string `json:"dpop_signing_alg_values_supported"`
	ACRValuesSupported               []string `json:"acr_values_supported,omitempty"`
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	d := discovery{
		Issuer: s.cfg.Issuer, AuthorizationChallengeEndpoint: s.endpoints.challenge,
		TokenEndpoint: s.endpoints.token, JWKSURI: s.endpoints.jwks, RegistrationEndpoint: s.endpoints.register,
		IntrospectionEndpoint: s.endpoints.introspect, RevocationEndpoint: s.endpoints.revoke,
		NonceEndpoint: s.endpoints.nonce, LogoutEndpoint: s.endpoints.logout,
		ScopesSupported:                  s.scopeNames,
		ResponseTypesSupported:           []string{"code"},
		GrantTypesSupported:              []string{"authorization_code", "refresh_token", "client_credentials"},
		TokenEndpointAuthMethods:         []string{"none", "client_secret_basic", "client_secret_post"},
		IntrospectionEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		RevocationEndpointAuthMethods:    []string{"none", "client_secret_basic", "client_secret_post"},
		DPoPSigningAlgValuesSupported:    []string{AlgES256},
	}
	for _, a := range s.cfg.ACRs {
		d.ACRValuesSupported = append(d.ACRValuesSupported, a.Value)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(s.cfg.Keys.JWKS())
}
