package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
	"github.com/moatsec/moat/kv"
)

// tokenResponse is the RFC 6749 §5.1 response, plus auth_session for later
// step-up (draft-ietf-oauth-first-party-apps).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	AuthSession  string `json:"auth_session,omitempty"`
}

// readForm parses an application/x-www-form-urlencoded body of bounded
// size and refuses repeated parameters (RFC 6749 §3.2).
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "content type must be application/x-www-form-urlencoded")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodySize)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "malformed or oversized form body")
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			oauthError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("parameter %q repeated", truncate(k)))
			return nil, false
		}
	}
	return r.PostForm, true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, ok := s.readForm(w, r)
	if !ok {
		return
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, r, form)
	case "refresh_token":
		s.refreshGrant(w, r, form)
	case "client_credentials":
		s.clientCredentialsGrant(w, r, form)
	case "":
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "grant_type is required")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "supported: authorization_code, refresh_token, client_credentials")
	}
}

func (s *Server) codeGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	proof, ok := s.verifyProof(w, r, s.endpoints.token)
	if !ok {
		return
	}
	code := form.Get("code")
	if code == "" || len(code) > 128 {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "code is missing, unknown, expired or used")
		return
	}
	it, err := s.cfg.Store.Consume(ctx, keyCode+sha256b64(code))
	if errors.Is(err, kv.ErrNotFound) {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "code is missing, unknown, expired or used")
		return
	}
	if err != nil {
		s.unavailable(w, r, "consuming code", err)
		return
	}
	var g grant
	if err := json.Unmarshal(it.Value, &g); err != nil {
		s.unavailable(w, r, "decoding code", err)
		return
	}
	if g.JKT != proof.KeyThumbprint || (form.Get("client_id") != "" && form.Get("client_id") != g.ClientID) {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "the code was issued to another client or key")
		return
	}
	client, ok := s.publicClient(w, r, g.ClientID, proof)
	if !ok {
		return
	}
	sess, sessValue, err := s.rekeySessionByHash(ctx, g.SessionHash)
	if err != nil {
		s.unavailable(w, r, "rekeying auth session", err)
		return
	}
	if sess == nil {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "the code's auth session has ended")
		return
	}
	now := s.cfg.Now()
	g.Family, err = randomToken(16)
	if err != nil {
		s.unavailable(w, r, "making token family", err)
		return
	}
	g.FamilyExpires = now.Add(s.cfg.RefreshTokenTTL).Unix()
	s.issue(w, r, client, &g, sessValue)
}

// rekeySessionByHash gives the session stored under hash a new value.
func (s *Server) rekeySessionByHash(ctx context.Context, hash string) (*authSession, string, error) {
	if hash == "" {
		return nil, "", nil
	}
	var sess authSession
	found, _, err := s.getJSON(ctx, keySession+hash, &sess)
	if err != nil || !found || s.cfg.Now().Unix() >= sess.Expires {
		return nil, "", err
	}
	value, err := s.rekeySession(ctx, "", &sess)
	if err != nil {
		return nil, "", err
	}
	if err := s.cfg.Store.Delete(ctx, keySession+hash); err != nil {
		return nil, "", err
	}
	return &sess, value, nil
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	proof, ok := s.verifyProof(w, r, s.endpoints.token)
	if !ok {
		return
	}
	rt := form.Get("refresh_token")
	if rt == "" || len(rt) > 128 {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "refresh_token is missing or unknown")
		return
	}
	key := keyRefresh + sha256b64(rt)
	var g grant
	found, version, err := s.getJSON(ctx, key, &g)
	if err != nil {
		s.unavailable(w, r, "loading refresh token", err)
		return
	}
	if !found {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "refresh_token is unknown or expired")
		return
	}
	if g.JKT != proof.KeyThumbprint || (form.Get("client_id") != "" && form.Get("client_id") != g.ClientID) {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "the refresh token was issued to another client or key")
		return
	}
	revoked, err := s.familyRevoked(ctx, g.Family)
	if err != nil {
		s.unavailable(w, r, "checking token family", err)
		return
	}
	if revoked {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "refresh token revoked")
		return
	}
	if g.Used {
		s.reuseDetected(w, r, &g)
		return
	}
	client, ok := s.publicClient(w, r, g.ClientID, proof)
	if !ok {
		return
	}
	if !s.refreshChecks(w, r, client, &g) {
		return
	}
	// Mark the presented token used; of concurrent refreshes with one
	// token exactly one gets here, and the others count as reuse.
	used := g
	used.Used = true
	b, err := json.Marshal(&used)
	if err != nil {
		s.unavailable(w, r, "encoding refresh token", err)
		return
	}
	ttl := time.Unix(g.FamilyExpires, 0).Sub(s.cfg.Now())
	if ttl <= 0 {
		oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "refresh token expired")
		return
	}
	if _, err := s.cfg.Store.CompareAndSet(ctx, key, b, ttl, version); err != nil {
		if errors.Is(err, kv.ErrConflict) {
			s.reuseDetected(w, r, &g)
			return
		}
		s.unavailable(w, r, "marking refresh token used", err)
		return
	}
	s.issue(w, r, client, &g, "")
}

// refreshChecks re-runs what a refresh must re-run: the checks that granted
// the token must still hold, and the mandatory checks are evaluated again
// (without an answer). On failure it has answered insufficient_authorization.
func (s *Server) refreshChecks(w http.ResponseWriter, r *http.Request, client *Client, g *grant) bool {
	ctx := r.Context()
	now := s.cfg.Now()
	for _, name := range s.mandatory {
		st, err := s.loadSuccess(ctx, client, name)
		if err != nil {
			s.unavailable(w, r, "loading check state", err)
			return false
		}
		if st != nil {
			continue
		}
		res, err := s.checks[name].Authorize(ctx, &CheckRequest{Client: client, Subject: g.Subject, Now: now})
		if err != nil {
			s.unavailable(w, r, "check "+name, err)
			return false
		}
		if res.Status != CheckSuccess || res.ValidFor <= 0 {
			s.emit(ctx, Event{Kind: EventRefreshRefused, Client: client, Check: name, Reason: "mandatory_check"})
			oauthError(w, http.StatusUnauthorized, CodeInsufficientAuthorization, "authorize again at the authorization challenge endpoint")
			return false
		}
		if err := s.saveSuccess(ctx, client, name, &success{Subject: g.Subject, AMR: res.AMR, At: now.Unix(), Until: now.Add(res.ValidFor).Unix()}); err != nil {
			s.unavailable(w, r, "saving check state", err)
			return false
		}
	}
	holds, err := s.holdsAll(ctx, client, g.Subject, g.Checks)
	if err != nil {
		s.unavailable(w, r, "loading check state", err)
		return false
	}
	if !holds {
		s.emit(ctx, Event{Kind: EventRefreshRefused, Client: client, Reason: "check_expired"})
		oauthError(w, http.StatusUnauthorized, CodeInsufficientAuthorization, "a check's success has expired; authorize again at the authorization challenge endpoint")
		return false
	}
	g.Until = 1<<62 - 1
	for _, name := range g.Checks {
		st, err := s.loadSuccess(ctx, client, name)
		if err != nil || st == nil {
			s.unavailable(w, r, "loading check state", fmt.Errorf("check state vanished: %v", err))
			return false
		}
		g.Until = min(g.Until, st.Until)
	}
	return true
}

// reuseDetected revokes the whole family of a refresh token presented a
// second time (RFC 9700 §4.14.2).
func (s *Server) reuseDetected(w http.ResponseWriter, r *http.Request, g *grant) {
	if err := s.revokeFamily(r.Context(), g.Family, g.FamilyExpires); err != nil {
		s.unavailable(w, r, "revoking token family", err)
		return
	}
	s.emit(r.Context(), Event{Kind: EventRefreshReuse, Client: &Client{ID: g.ClientID}})
	oauthError(w, http.StatusBadRequest, CodeInvalidGrant, "refresh token already used; its family is revoked")
}

func (s *Server) revokeFamily(ctx context.Context, family string, expires int64) error {
	ttl := time.Unix(expires, 0).Sub(s.cfg.Now())
	if ttl <= 0 || family == "" {
		return nil
	}
	_, err := s.cfg.Store.Set(ctx, keyFamilyRevoked+family, []byte("1"), ttl)
	return err
}

func (s *Server) familyRevoked(ctx context.Context, family string) (bool, error) {
	if family == "" {
		return true, nil
	}
	_, err := s.cfg.Store.Get(ctx, keyFamilyRevoked+family)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// issue signs an access token for g, stores a new refresh token of g's
// family, and answers the token response.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, client *Client, g *grant, sessValue string) {
	ctx := r.Context()
	now := s.cfg.Now()
	exp := min(now.Add(s.cfg.AccessTokenTTL).Unix(), g.Until)
	if exp <= now.Unix() {
		oauthError(w, http.StatusUnauthorized, CodeInsufficientAuthorization, "the checks' successes have expired; authorize again")
		return
	}
	at, err := s.signAccessToken(client, g, now, exp)
	if err != nil {
		s.unavailable(w, r, "signing access token", err)
		return
	}
	rt, err := randomToken(32)
	if err != nil {
		s.unavailable(w, r, "making refresh token", err)
		return
	}
	next := *g
	next.Used = false
	next.SessionHash = ""
	ttl := time.Unix(g.FamilyExpires, 0).Sub(now)
	if err := s.putJSON(ctx, keyRefresh+sha256b64(rt), &next, ttl); err != nil {
		s.unavailable(w, r, "saving refresh token", err)
		return
	}
	s.emit(ctx, Event{Kind: EventTokenIssued, Client: client, ACR: g.ACR, Subject: g.Subject})
	httpjson.Write(w, http.StatusOK, tokenResponse{
		AccessToken: at, TokenType: "DPoP", ExpiresIn: exp - now.Unix(), RefreshToken: rt,
		Scope: strings.Join(g.Scope, " "), AuthSession: sessValue,
	})
}

// signAccessToken builds and signs the RFC 9068 access token.
func (s *Server) signAccessToken(client *Client, g *grant, now time.Time, exp int64) (string, error) {
	jti, err := randomToken(16)
	if err != nil {
		return "", err
	}
	c := accessClaims{
		Issuer: s.cfg.Issuer, Subject: g.Subject, Audience: audience{s.cfg.Audience},
		Expiry: exp, IssuedAt: now.Unix(), ID: jti, ClientID: client.ID,
		Scope: strings.Join(g.Scope, " "), ACR: g.ACR, AMR: g.AMR, AMRTimes: g.AMRTimes, AuthTime: g.AuthTime,
		AppID: client.AppID, AppVersion: client.AppVersion, Platform: client.Platform,
		Channel: client.Channel, DeviceID: client.DeviceID,
	}
	if g.JKT != "" {
		c.Cnf = &confirmed{JKT: g.JKT}
	}
	if c.Subject == "" {
		c.Subject = client.ID
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	return s.cfg.Keys.sign(b)
}

// authenticateConfidential checks client_secret_basic or client_secret_post
// credentials. On failure it has answered.
func (s *Server) authenticateConfidential(w http.ResponseWriter, r *http.Request, form url.Values) (*Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || form.Get("client_secret") != "" {
			oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "malformed client credentials")
			return nil, false
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	fail := func() (*Client, bool) {
		w.Header().Set("WWW-Authenticate", `Basic realm="moat"`)
		oauthError(w, http.StatusUnauthorized, CodeInvalidClient, "client authentication failed")
		return nil, false
	}
	if id == "" || secret == "" || len(id) > maxFieldLen || len(secret) > maxFieldLen {
		return fail()
	}
	c, err := s.cfg.Clients.Client(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		secretMatches(secret, "unknown-client-padding") // same work as a known client
		return fail()
	}
	if err != nil {
		s.unavailable(w, r, "loading client", err)
		return nil, false
	}
	if !c.Confidential || !secretMatches(secret, c.SecretHash) {
		return fail()
	}
	return c, true
}

func (s *Server) clientCredentialsGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	client, ok := s.authenticateConfidential(w, r, form)
	if !ok {
		return
	}
	scope := strings.Fields(form.Get("scope"))
	if len(scope) == 0 {
		scope = slices.DeleteFunc(slices.Clone(client.Scopes), func(s string) bool { return s == IntrospectScope })
	}
	for _, sc := range scope {
		if !slices.Contains(client.Scopes, sc) {
			oauthError(w, http.StatusBadRequest, CodeInvalidScope, fmt.Sprintf("scope %q is not allowed for this client", truncate(sc)))
			return
		}
	}
	now := s.cfg.Now()
	exp := now.Add(s.cfg.AccessTokenTTL).Unix()
	at, err := s.signAccessToken(client, &grant{ClientID: client.ID, Scope: scope}, now, exp)
	if err != nil {
		s.unavailable(w, r, "signing access token", err)
		return
	}
	s.emit(r.Context(), Event{Kind: EventTokenIssued, Client: client})
	httpjson.Write(w, http.StatusOK, tokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: exp - now.Unix(), Scope: strings.Join(scope, " "),
	})
}
