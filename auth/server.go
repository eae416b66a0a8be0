package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
	"github.com/moatsec/moat/internal/nonce"
	"github.com/moatsec/moat/kv"
)

// Defaults for the server's lifetimes (Config fields left zero).
const (
	DefaultAccessTokenTTL  = 10 * time.Minute
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
	DefaultCodeTTL         = 60 * time.Second
	MaxCodeTTL             = 60 * time.Second
	DefaultNonceTTL        = 5 * time.Minute
	DefaultMaxBodySize     = 64 << 10
	DefaultPrefix          = "/oauth"
)

// IntrospectScope is the scope a confidential client needs to call the
// introspection endpoint.
const IntrospectScope = "moat:introspect"

// ScopeRule maps one scope element to the security checks that grant it,
// for every app or only for one app and/or channel. When several rules
// match a client, the most specific wins (app and channel, then app, then
// channel, then neither). A rule with no checks grants the scope after the
// mandatory checks alone.
type ScopeRule struct {
	Scope   string
	Checks  []string
	AppID   string
	Channel string
}

// ACR is an authentication context class: an acr value and the checks that
// satisfy it. A step-up request for the value runs those checks.
type ACR struct {
	Value  string
	Checks []string
}

// ConfidentialClient is a server-to-server caller with a client secret.
type ConfidentialClient struct {
	ID string
	// SecretHash is HashClientSecret(secret); see NewClientSecret.
	SecretHash string
	// Scopes lists what it may ask for with client_credentials, and
	// IntrospectScope to call the introspection endpoint.
	Scopes []string
}

// Config configures [NewServer]. Issuer, Store, Clients, Keys and
// RegistrationPolicy are required.
type Config struct {
	// Issuer is the server's public base URL ("https://api.example.com"):
	// the "iss" of every token and the origin of every endpoint URL that
	// DPoP proofs name. Required; https, or http on a loopback host.
	Issuer string
	// Prefix is the path under which the endpoints live. Empty means
	// DefaultPrefix ("/oauth").
	Prefix string
	// Audience is the "aud" of access tokens. Empty means Issuer.
	Audience string

	// Store keeps sessions, codes, refresh tokens, check state, nonces and
	// replay caches. Required.
	Store kv.Store
	// Clients keeps registered clients. Required.
	Clients ClientStore
	// Keys signs access tokens. Required.
	Keys *KeySet

	// Checks are the security checks scopes and acr values refer to.
	Checks []Check
	// MandatoryChecks run for every authorization and every refresh (the
	// application scope). Empty means none.
	MandatoryChecks []string
	// Scopes maps scope elements to checks. A requested scope element with
	// no rule is refused with invalid_scope.
	Scopes []ScopeRule
	// ACRs lists the acr values, weakest first. A token's acr is the
	// strongest value whose checks all succeeded for it.
	ACRs []ACR
	// CombineAMR merges the amr lists of the checks that granted a token
	// (stepup.CombineAMR adds "mfa" when they cover two factor kinds). Nil
	// means their plain union in order.
	CombineAMR func(lists ...[]string) []string
	// SSOChecks names checks whose success is shared by the apps of one SSO
	// group on one device rather than kept per client. "One device" is the
	// device id the clients declared at registration: a client that
	// registers an app of the group with another device's id shares that
	// device's successes. Mark checks for SSO only when registration
	// proves the device (an attestation policy that binds the device id)
	// or device ids are secrets that never leave the device.
	SSOChecks []string
	// SSOGroups maps app ids to their SSO group. Apps without a group
	// share nothing.
	SSOGroups map[string]string

	// RegistrationPolicy decides who may register. Required; use
	// InsecureAcceptAllRegistrations to accept everyone (tests only).
	RegistrationPolicy RegistrationPolicy
	// ClientPolicy is asked at every authorization and refresh whether a
	// registered client may go on (device status, app version). Nil means
	// RegistrationPolicy when it implements ClientPolicy, and otherwise no
	// such check; moat.Stack always sets it.
	ClientPolicy ClientPolicy
	// ConfidentialClients are added to Clients at start (server-to-server
	// callers using client_credentials and introspection).
	ConfidentialClients []ConfidentialClient

	// AccessTokenTTL is the longest access-token lifetime; a token never
	// outlives the check successes that granted it. Zero means
	// DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the absolute lifetime of a refresh-token family
	// (and of auth sessions). Zero means DefaultRefreshTokenTTL.
	RefreshTokenTTL time.Duration
	// CodeTTL is the authorization code lifetime, at most MaxCodeTTL. Zero
	// means DefaultCodeTTL.
	CodeTTL time.Duration
	// NonceTTL is the lifetime of registration nonces. Zero means
	// DefaultNonceTTL.
	NonceTTL time.Duration
	// RequireDPoPNonce makes every DPoP proof carry a server nonce.
	// False: proofs are bounded by their iat window and replay cache only.
	RequireDPoPNonce bool
	// DPoPWindow is the accepted distance between a proof's iat and the
	// server clock. Zero means DefaultDPoPWindow.
	DPoPWindow time.Duration
	// MaxBodySize bounds request bodies. Zero means DefaultMaxBodySize.
	MaxBodySize int64

	// OnEvent, when set, receives security outcomes (for analytics). It
	// is called synchronously and must not block.
	OnEvent func(context.Context, Event)
	// Logger receives internal errors. Nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Server is the authorization server for first-party apps: registration,
// the Authorization Challenge Endpoint, the token endpoint, introspection,
// revocation, logout, JWKS and discovery. Create it with [NewServer] and
// serve [Server.Handler].
type Server struct {
	cfg        Config
	checks     map[string]Check
	mandatory  []string
	validator  *Validator
	dpop       *DPoPVerifier
	nonces     *nonce.Issuer
	endpoints  endpoints
	sso        map[string]bool
	scopeNames []string
}

type endpoints struct {
	nonce, register, challenge, token, introspect, revoke, logout, jwks, discovery string
}

// InsecureAcceptAllRegistrations is a RegistrationPolicy that accepts every
// registration without attestation or device checks. For tests and local
// experiments only.
var InsecureAcceptAllRegistrations RegistrationPolicy = acceptAll{}

type acceptAll struct{}

func (acceptAll) AllowRegistration(context.Context, *Registration, *Client) error { return nil }

// NewServer checks cfg and returns a server.
func NewServer(cfg Config) (*Server, error) {
	bad := func(format string, a ...any) (*Server, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfiguration}, a...)...)
	}
	iss, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		return bad("Issuer must be an absolute URL without query, fragment or trailing slash")
	}
	if iss.Scheme != "https" && !(iss.Scheme == "http" && isLoopback(iss.Hostname())) {
		return bad("Issuer must use https (http only on a loopback host)")
	}
	if cfg.Store == nil || cfg.Clients == nil || cfg.Keys == nil {
		return bad("Store, Clients and Keys are required")
	}
	if cfg.RegistrationPolicy == nil {
		return bad("RegistrationPolicy is required (InsecureAcceptAllRegistrations accepts everyone)")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		return bad("Prefix must start with / and not end with /")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.CodeTTL > MaxCodeTTL {
		return bad("CodeTTL must be at most %s", MaxCodeTTL)
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = DefaultNonceTTL
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cp, ok := cfg.RegistrationPolicy.(ClientPolicy); ok && cfg.ClientPolicy == nil {
		cfg.ClientPolicy = cp
	}

	s := &Server{cfg: cfg, checks: make(map[string]Check), sso: make(map[string]bool)}
	for _, c := range cfg.Checks {
		if c == nil || c.Name() == "" {
			return bad("a check has no name")
		}
		if _, dup := s.checks[c.Name()]; dup {
			return bad("check %q registered twice", c.Name())
		}
		s.checks[c.Name()] = c
	}
	known := func(names []string, where string) error {
		for _, n := range names {
			if _, ok := s.checks[n]; !ok {
				return fmt.Errorf("%w: %s names unknown check %q", ErrInvalidConfiguration, where, n)
			}
		}
		return nil
	}
	if err := known(cfg.MandatoryChecks, "MandatoryChecks"); err != nil {
		return nil, err
	}
	s.mandatory = cfg.MandatoryChecks
	seenScope := map[string]bool{}
	for _, r := range cfg.Scopes {
		if r.Scope == "" || strings.ContainsAny(r.Scope, " \t\"\\") {
			return bad("scope %q is not a valid scope element", r.Scope)
		}
		if err := known(r.Checks, "scope "+r.Scope); err != nil {
			return nil, err
		}
		if !seenScope[r.Scope] {
			seenScope[r.Scope] = true
			s.scopeNames = append(s.scopeNames, r.Scope)
		}
	}
	for _, a := range cfg.ACRs {
		if a.Value == "" || len(a.Checks) == 0 {
			return bad("an ACR needs a value and checks")
		}
		if err := known(a.Checks, "acr "+a.Value); err != nil {
			return nil, err
		}
	}
	if err := known(cfg.SSOChecks, "SSOChecks"); err != nil {
		return nil, err
	}
	for _, n := range cfg.SSOChecks {
		s.sso[n] = true
	}

	s.validator, err = NewValidator(ValidatorConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Algorithms: []string{AlgES256, AlgEdDSA},
		Keys: cfg.Keys, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	s.dpop, err = NewDPoPVerifier(DPoPConfig{
		Algorithms: []string{AlgES256}, Store: cfg.Store, Window: cfg.DPoPWindow,
		RequireNonce: cfg.RequireDPoPNonce, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	s.nonces, err = nonce.New(cfg.Store, "moat:auth:regnonce:", cfg.NonceTTL)
	if err != nil {
		return nil, err
	}
	base := cfg.Issuer + cfg.Prefix
	s.endpoints = endpoints{
		nonce: base + "/nonce", register: base + "/register", challenge: base + "/authorize-challenge",
		token: base + "/token", introspect: base + "/introspect", revoke: base + "/revoke",
		logout: base + "/logout", jwks: base + "/jwks",
		discovery: cfg.Issuer + "/.well-known/oauth-authorization-server" + iss.EscapedPath(),
	}
	for _, cc := range cfg.ConfidentialClients {
		if cc.ID == "" || cc.SecretHash == "" {
			return bad("a confidential client needs an ID and a SecretHash")
		}
		err := cfg.Clients.CreateClient(context.Background(), &Client{
			ID: cc.ID, Confidential: true, SecretHash: cc.SecretHash, Scopes: cc.Scopes, RegisteredAt: cfg.Now(),
		})
		if err != nil && !errors.Is(err, ErrClientExists) {
			return nil, fmt.Errorf("moat/auth: storing confidential client %q: %w", cc.ID, err)
		}
		if errors.Is(err, ErrClientExists) {
			existing, gerr := cfg.Clients.Client(context.Background(), cc.ID)
			if gerr != nil {
				return nil, fmt.Errorf("moat/auth: reading confidential client %q: %w", cc.ID, gerr)
			}
			if !existing.Confidential || existing.SecretHash != cc.SecretHash {
				return bad("client id %q already exists with other credentials", cc.ID)
			}
		}
	}
	return s, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

// Issuer returns the server's issuer URL.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// Audience returns the audience of the server's access tokens.
func (s *Server) Audience() string { return s.cfg.Audience }

// Validator returns a validator for the server's own access tokens.
func (s *Server) Validator() *Validator { return s.validator }

// DPoP returns the server's DPoP proof verifier (shared with the resource
// middleware so that both use one replay cache and one set of nonces).
func (s *Server) DPoP() *DPoPVerifier { return s.dpop }

// Store returns the server's kv.Store.
func (s *Server) Store() kv.Store { return s.cfg.Store }

type route struct {
	pattern string
	handler http.HandlerFunc
}

func (s *Server) routes() []route {
	p := s.cfg.Prefix
	u, _ := url.Parse(s.endpoints.discovery)
	return []route{
		{"GET " + p + "/nonce", s.handleNonce},
		{"POST " + p + "/nonce", s.handleNonce},
		{"POST " + p + "/register", s.handleRegister},
		{"POST " + p + "/authorize-challenge", s.handleChallenge},
		{"POST " + p + "/token", s.handleToken},
		{"POST " + p + "/introspect", s.handleIntrospect},
		{"POST " + p + "/revoke", s.handleRevoke},
		{"POST " + p + "/logout", s.handleLogout},
		{"GET " + p + "/jwks", s.handleJWKS},
		{"GET " + u.EscapedPath(), s.handleDiscovery},
	}
}

// Handler returns the handler serving every endpoint: mount it at the root
// of the server's mux (it routes Prefix and /.well-known itself), or use
// [Server.Mount].
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}

// Mount registers every endpoint on mux, pattern by pattern.
func (s *Server) Mount(mux *http.ServeMux) {
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern, r.handler)
	}
}

// oauthError writes an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	httpjson.WriteError(w, status, code, description, nil)
}

// unavailable answers 503 after logging the internal error; the client
// learns nothing about it.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Logger.ErrorContext(r.Context(), "moat/auth: "+what, "err", err, "path", r.URL.Path)
	oauthError(w, http.StatusServiceUnavailable, CodeTemporarilyUnavailable, "the server cannot decide right now; try again later")
}

// refuse answers a policy refusal, or 503 when err is not a refusal.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ref *Refusal
	if errors.As(err, &ref) {
		httpjson.WriteError(w, ref.HTTPStatus(), ref.Code, ref.Description, ref.Extra)
		return
	}
	s.unavailable(w, r, what, err)
}

// verifyProof checks the DPoP proof of a request to one of the server's
// endpoints. On failure it has answered the request.
func (s *Server) verifyProof(w http.ResponseWriter, r *http.Request, endpointURL string) (*DPoPProof, bool) {
	values := r.Header.Values("DPoP")
	if len(values) != 1 {
		oauthError(w, http.StatusBadRequest, CodeInvalidDPoPProof, "exactly one DPoP proof header is required")
		return nil, false
	}
	proof, err := s.dpop.Verify(r.Context(), values[0], DPoPRequest{Method: r.Method, URL: endpointURL})
	switch {
	case err == nil:
		return proof, true
	case errors.Is(err, ErrDPoPNonce):
		n, nerr := s.dpop.Nonce(r.Context())
		if nerr != nil {
			s.unavailable(w, r, "issuing DPoP nonce", nerr)
			return nil, false
		}
		w.Header().Set("DPoP-Nonce", n)
		oauthError(w, http.StatusBadRequest, CodeUseDPoPNonce, "the DPoP proof must carry the server nonce")
	case errors.Is(err, ErrInvalidDPoPProof), errors.Is(err, ErrDPoPReplay):
		oauthError(w, http.StatusBadRequest, CodeInvalidDPoPProof, publicMessage(err))
	default:
		s.unavailable(w, r, "verifying DPoP proof", err)
	}
	return nil, false
}

// publicMessage strips the package prefix from an error meant for clients.
func publicMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "moat/auth: ")
}
