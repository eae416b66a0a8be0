package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/moatsec/moat/kv"
)

// DefaultTokenCacheSize is the verified-token cache size when
// ResourceConfig.CacheSize is zero.
const DefaultTokenCacheSize = 10000

// ResourceConfig configures [NewResource]. Validator, DPoP, Store and
// Origin are required.
type ResourceConfig struct {
	// Validator validates access tokens. Required.
	Validator *Validator
	// DPoP verifies the proofs that DPoP-bound tokens need. Share the
	// authorization server's verifier (Server.DPoP) so both use one replay
	// cache. Required.
	DPoP *DPoPVerifier
	// Store holds revoked token ids. Required.
	Store kv.Store
	// Origin is the API's public origin ("https://api.example.com"): DPoP
	// proofs must name it in htu. It is never derived from the request's
	// Host header, which the caller controls. Required.
	Origin string
	// AcceptBearerTokens accepts tokens not bound to a key (confidential
	// clients' client_credentials tokens) presented as Bearer. False: only
	// DPoP-bound tokens are accepted. A DPoP-bound token presented as
	// Bearer is refused either way.
	AcceptBearerTokens bool
	// CacheSize bounds the verified-token cache. Zero means
	// DefaultTokenCacheSize.
	CacheSize int
	// Logger receives internal errors. Nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Resource protects API handlers: it validates the access token and its
// DPoP proof, refuses revoked tokens, checks scopes, and puts the
// [Principal] in the request context.
type Resource struct {
	cfg    ResourceConfig
	origin string
	cache  *tokenCache
}

// NewResource checks cfg and returns the resource middleware factory.
func NewResource(cfg ResourceConfig) (*Resource, error) {
	if cfg.Validator == nil || cfg.DPoP == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: resource needs a Validator, a DPoP verifier and a Store", ErrInvalidConfiguration)
	}
	u, err := url.Parse(cfg.Origin)
	if cfg.Origin == "" || err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: Origin must be scheme://host[:port]", ErrInvalidConfiguration)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultTokenCacheSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Resource{cfg: cfg, origin: strings.TrimSuffix(cfg.Origin, "/"), cache: newTokenCache(cfg.CacheSize)}, nil
}

// Check authenticates r: it returns the principal, or a *ResourceError to
// answer with (or another error when a store failed: answer 503). Scopes,
// when given, must all have been granted.
func (rs *Resource) Check(r *http.Request, scopes ...string) (*Principal, error) {
	p, err := rs.authenticate(r)
	if err != nil {
		return nil, err
	}
	if err := scopeError(p, scopes); err != nil {
		return nil, err
	}
	return p, nil
}

// Authenticate is the middleware that validates the token and its proof
// and stores the principal in the request context; it answers failures
// itself (401, 400, or 503 when a store failed).
func (rs *Resource) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := rs.authenticate(r)
		if err != nil {
			rs.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ContextWithPrincipal(r.Context(), p)))
	})
}

// RequireScope is the middleware that refuses a request whose principal
// (put there by Authenticate) lacks any of scopes, with 403
// insufficient_scope.
func (rs *Resource) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				rs.writeError(w, r, &ResourceError{Status: http.StatusUnauthorized})
				return
			}
			if err := scopeError(p, scopes); err != nil {
				rs.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Require is Authenticate followed by RequireScope(scopes...).
func (rs *Resource) Require(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return rs.Authenticate(rs.RequireScope(scopes...)(next))
	}
}

func scopeError(p *Principal, scopes []string) error {
	for _, sc := range scopes {
		if !p.HasScope(sc) {
			return &ResourceError{
				Status: http.StatusForbidden, Code: CodeInsufficientScope,
				Description: "the token lacks a required scope", Scope: scopes,
			}
		}
	}
	return nil
}

// writeError answers err: a *ResourceError as is, anything else as 503.
func (rs *Resource) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *ResourceError
	if !errors.As(err, &re) {
		rs.cfg.Logger.ErrorContext(r.Context(), "moat/auth: protected request", "err", err, "path", r.URL.Path)
		re = &ResourceError{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavailable,
			Description: "the server cannot decide right now; try again later"}
	}
	WriteResourceError(w, r, re)
}

func invalidToken(description string) *ResourceError {
	return &ResourceError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: description}
}

func (rs *Resource) authenticate(r *http.Request) (*Principal, error) {
	auths := r.Header.Values("Authorization")
	if len(auths) == 0 {
		return nil, &ResourceError{Status: http.StatusUnauthorized}
	}
	if len(auths) > 1 {
		return nil, &ResourceError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "more than one Authorization header"}
	}
	scheme, token := authScheme(r)
	dpop := strings.EqualFold(scheme, "DPoP")
	if !dpop && !strings.EqualFold(scheme, "Bearer") {
		return nil, &ResourceError{Status: http.StatusUnauthorized}
	}
	if token == "" {
		return nil, invalidToken("empty token")
	}
	now := rs.cfg.Now()
	key := tokenKey(token)
	e := rs.cache.get(key, now)
	if e == nil {
		c, err := rs.cfg.Validator.validate(token)
		if err != nil {
			return nil, invalidToken(publicMessage(err))
		}
		e = &cachedToken{principal: c.principal(), expires: time.Unix(c.Expiry, 0), revokedKey: keyRevokedJTI + c.ID}
		rs.cache.put(key, e, now)
	}
	p := e.principal
	switch {
	case p.KeyThumbprint != "" && !dpop:
		return nil, invalidToken("the token is bound to a key: present it with the DPoP scheme and a proof")
	case p.KeyThumbprint == "" && dpop:
		return nil, invalidToken("the token is not bound to a key")
	case p.KeyThumbprint == "" && !rs.cfg.AcceptBearerTokens:
		return nil, invalidToken("bearer tokens are not accepted here")
	}
	if dpop {
		if err := rs.checkProof(r, token, p.KeyThumbprint); err != nil {
			return nil, err
		}
	}
	if err := rs.revoked(r.Context(), e.revokedKey); err != nil {
		return nil, err
	}
	return p, nil
}

func (rs *Resource) checkProof(r *http.Request, token, jkt string) error {
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return &ResourceError{Status: http.StatusUnauthorized, Code: CodeInvalidDPoPProof, Description: "exactly one DPoP proof header is required"}
	}
	proof, err := rs.cfg.DPoP.Verify(r.Context(), proofs[0], DPoPRequest{Method: r.Method, URL: rs.origin + requestPath(r), AccessToken: token})
	switch {
	case err == nil:
	case errors.Is(err, ErrDPoPNonce):
		n, nerr := rs.cfg.DPoP.Nonce(r.Context())
		if nerr != nil {
			return nerr
		}
		return &ResourceError{Status: http.StatusUnauthorized, Code: CodeUseDPoPNonce, Description: "the DPoP proof must carry the server nonce", DPoPNonce: n}
	case errors.Is(err, ErrInvalidDPoPProof), errors.Is(err, ErrDPoPReplay):
		return &ResourceError{Status: http.StatusUnauthorized, Code: CodeInvalidDPoPProof, Description: publicMessage(err)}
	default:
		return err
	}
	if proof.KeyThumbprint != jkt {
		return invalidToken("the DPoP proof is signed by another key than the token is bound to")
	}
	return nil
}

func (rs *Resource) revoked(ctx context.Context, key string) error {
	_, err := rs.cfg.Store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("moat/auth: checking revocation: %w", err)
	}
	return invalidToken("token revoked")
}

// requestPath returns the path the client addressed, before any
// http.StripPrefix, without the query.
func requestPath(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// tokenCache remembers verified tokens by the SHA-256 of the token, until
// they expire. Entries are immutable.
type tokenCache struct {
	mu   sync.RWMutex
	max  int
	byID map[[sha256.Size]byte]*cachedToken
}

type cachedToken struct {
	principal  *Principal
	expires    time.Time
	revokedKey string
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, byID: make(map[[sha256.Size]byte]*cachedToken)}
}

// tokenKey hashes a token without copying it (a []byte conversion would
// allocate on every request; SHA-256 only reads its input).
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

func (c *tokenCache) get(k [sha256.Size]byte, now time.Time) *cachedToken {
	c.mu.RLock()
	e := c.byID[k]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *tokenCache) put(k [sha256.Size]byte, e *cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.max {
		for id, old := range c.byID {
			if !now.Before(old.expires) {
				delete(c.byID, id)
			}
		}
		for id := range c.byID {
			if len(c.byID) < c.max {
				break
			}
			delete(c.byID, id)
		}
	}
	c.byID[k] = e
}
