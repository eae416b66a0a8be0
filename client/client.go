package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatsec/moat/update"
)

// ChallengeHandler answers one security check's challenge. It gets the
// challenge object the server sent and returns the answer object (any
// JSON-encodable value). Register one per check name in Config.Handlers.
type ChallengeHandler func(ctx context.Context, challenge json.RawMessage) (answer any, err error)

// AttestFunc produces the attestation object sent at registration. It gets
// the server nonce and the thumbprint of the client's key; the attestation
// must commit to both (see package attest).
type AttestFunc func(ctx context.Context, nonce, keyThumbprint string) (json.RawMessage, error)

// Config configures [New]. Issuer and the app fields are required.
type Config struct {
	// Issuer is the server's issuer URL; endpoints are read from its RFC
	// 8414 metadata, whose issuer must match exactly.
	Issuer string
	// HTTPClient sends every request. Nil means http.DefaultClient; in
	// production pass a pinned client (package pinning).
	HTTPClient *http.Client
	// Key is the client's key pair (P-256). Nil means a fresh key in
	// memory; apps keep theirs in the secure element.
	Key crypto.Signer

	AppID      string
	AppVersion string
	Platform   string
	Channel    string
	DeviceID   string

	// Handlers answer challenges, by check name.
	Handlers map[string]ChallengeHandler
	// Attest, when set, produces the registration's attestation object.
	Attest AttestFunc
	// Header is added to every request (Accept-Language, for example).
	Header http.Header
	// Updates, when set, keeps the app's web resources up to date: every
	// request reports the installed bundle version, and a call refused with
	// update_required installs the update (verified and atomic, see package
	// update) and is retried once.
	Updates *update.Client
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Client is the app side of the moat protocol. It is safe for concurrent
// use.
type Client struct {
	cfg   Config
	hc    *http.Client
	proof *ProofSigner
	meta  metadata

	mu           sync.Mutex
	clientID     string
	accessToken  string
	accessExp    time.Time
	refreshToken string
	authSession  string
	scope        []string
	// pending is the step-up (acr values, max age) that the current auth
	// session is being challenged for: when the session ends before it
	// completes, the new session asks for it again instead of silently
	// dropping it.
	pending *stepUpDemand
	nonces  map[string]string // DPoP nonce per origin
}

type metadata struct {
	Issuer                         string `json:"issuer"`
	AuthorizationChallengeEndpoint string `json:"authorization_challenge_endpoint"`
	TokenEndpoint                  string `json:"token_endpoint"`
	RegistrationEndpoint           string `json:"registration_endpoint"`
	RevocationEndpoint             string `json:"revocation_endpoint"`
	NonceEndpoint                  string `json:"nonce_endpoint"`
	LogoutEndpoint                 string `json:"logout_endpoint"`
}

// maxResponse bounds what the client reads of a server answer.
const maxResponse = 1 << 20

// New reads the server's metadata and returns a client. The client is not
// registered yet: call Register (once per installation) or Resume.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Issuer == "" || cfg.AppID == "" || cfg.Platform == "" || cfg.Channel == "" || cfg.DeviceID == "" {
		return nil, errors.New("moat/client: Issuer, AppID, Platform, Channel and DeviceID are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	}
	ps, err := NewProofSigner(cfg.Key)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, hc: cfg.HTTPClient, proof: ps, nonces: map[string]string{}}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, errors.New("moat/client: Issuer is not an absolute URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Issuer+"/.well-known/oauth-authorization-server"+u.EscapedPath(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	if err := decode(resp, http.StatusOK, &c.meta); err != nil {
		return nil, fmt.Errorf("moat/client: reading server metadata: %w", err)
	}
	if c.meta.Issuer != cfg.Issuer {
		return nil, errors.New("moat/client: server metadata names another issuer")
	}
	return c, nil
}

// Thumbprint returns the thumbprint of the client's key.
func (c *Client) Thumbprint() string { return c.proof.Thumbprint() }

// ClientID returns the client_id from registration ("" before).
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Resume sets the client_id of an earlier registration with the same key.
func (c *Client) Resume(clientID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clientID = clientID
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	for k, vs := range c.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.cfg.Updates != nil {
		req.Header.Set(update.HeaderBundleVersion, strconv.FormatUint(c.cfg.Updates.InstalledVersion(), 10))
	}
	return c.hc.Do(req)
}

// decode reads a JSON answer with the wanted status into v, or returns the
// server's error as *OAuthError.
func decode(resp *http.Response, want int, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return errorFrom(resp.StatusCode, b)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("moat/client: malformed server answer: %w", err)
	}
	return nil
}

func errorFrom(status int, body []byte) *OAuthError {
	e := &OAuthError{Status: status, Body: map[string]any{}}
	_ = json.Unmarshal(body, &e.Body)
	e.Code, _ = e.Body["error"].(string)
	e.Description, _ = e.Body["error_description"].(string)
	if e.Code == "" {
		e.Code = "http_" + strconv.Itoa(status)
	}
	return e
}

func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// signed sends a request with a DPoP proof (and the access token when
// token is not empty).
func (c *Client) signed(ctx context.Context, method, target string, body []byte, contentType, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.signedRequest(req, body, token)
}

// signedRequest sends a copy of orig with body, a fresh DPoP proof and the
// access token (if any), retrying once when the server asks for a DPoP
// nonce.
func (c *Client) signedRequest(orig *http.Request, body []byte, token string) (*http.Response, error) {
	target := orig.URL.String()
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		n := c.nonces[origin(target)]
		c.mu.Unlock()
		proof, err := c.proof.Proof(orig.Method, target, token, n, c.cfg.Now())
		if err != nil {
			return nil, err
		}
		req := orig.Clone(orig.Context())
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		req.Header.Set("DPoP", proof)
		if token != "" {
			req.Header.Set("Authorization", "DPoP "+token)
		}
		resp, err := c.send(req)
		if err != nil {
			return nil, err
		}
		if nn := resp.Header.Get("DPoP-Nonce"); nn != "" {
			c.mu.Lock()
			c.nonces[origin(target)] = nn
			c.mu.Unlock()
			if attempt == 0 && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) && wantsNonce(resp) {
				drain(resp)
				continue
			}
		}
		return resp, nil
	}
}

func wantsNonce(resp *http.Response) bool {
	for _, ch := range ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate")) {
		if ch.Params["error"] == "use_dpop_nonce" {
			return true
		}
	}
	// the token endpoint answers in the body
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return bytes.Contains(b, []byte(`"use_dpop_nonce"`))
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
}

// Register registers this app instance: it gets a server nonce, produces
// the attestation (when Config.Attest is set), and sends the key, signed
// with a DPoP proof by that key.
func (c *Client) Register(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.meta.NonceEndpoint, nil)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	var nr struct {
		Nonce string `json:"nonce"`
	}
	if err := decode(resp, http.StatusOK, &nr); err != nil {
		return err
	}
	body := map[string]any{
		"app_id": c.cfg.AppID, "app_version": c.cfg.AppVersion, "platform": c.cfg.Platform,
		"channel": c.cfg.Channel, "device_id": c.cfg.DeviceID, "jwk": c.proof.PublicJWK(), "nonce": nr.Nonce,
	}
	if c.cfg.Attest != nil {
		att, err := c.cfg.Attest(ctx, nr.Nonce, c.proof.Thumbprint())
		if err != nil {
			return fmt.Errorf("moat/client: attestation: %w", err)
		}
		body["attestation"] = att
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err = c.signed(ctx, http.MethodPost, c.meta.RegistrationEndpoint, b, "application/json", "")
	if err != nil {
		return err
	}
	var rr struct {
		ClientID string `json:"client_id"`
	}
	if err := decode(resp, http.StatusCreated, &rr); err != nil {
		return err
	}
	c.mu.Lock()
	c.clientID = rr.ClientID
	c.mu.Unlock()
	return nil
}

// maxRounds bounds the challenge rounds of one authorization.
const maxRounds = 16

// Authorize runs the Authorization Challenge Endpoint for scope: it
// answers every challenge through Config.Handlers, then exchanges the
// authorization code for tokens.
func (c *Client) Authorize(ctx context.Context, scope ...string) error {
	return c.authorize(ctx, scope, nil, -1, nil)
}

// StepUp asks for the acr values (and max age in seconds, or -1 for none)
// a resource demanded, reusing the auth session so that only the missing
// checks are challenged.
func (c *Client) StepUp(ctx context.Context, acrValues []string, maxAge int) error {
	return c.authorize(ctx, nil, acrValues, maxAge, nil)
}

// Answer continues the current auth session with answers the app already
// has, keyed by check name (for example a code the user typed into a
// challenge screen that stayed open), then goes on as Authorize does.
func (c *Client) Answer(ctx context.Context, answers map[string]any) error {
	c.mu.Lock()
	session := c.authSession
	c.mu.Unlock()
	if session == "" {
		return errors.New("moat/client: no auth session to answer in; authorize first")
	}
	return c.authorize(ctx, nil, nil, -1, answers)
}

// stepUpDemand is what a step-up asked for.
type stepUpDemand struct {
	acrValues []string
	maxAge    int
}

func (c *Client) authorize(ctx context.Context, scope, acrValues []string, maxAge int, answers map[string]any) error {
	c.mu.Lock()
	clientID, session, lastScope, pending := c.clientID, c.authSession, c.scope, c.pending
	if len(acrValues) > 0 || maxAge >= 0 {
		pending = &stepUpDemand{acrValues: acrValues, maxAge: maxAge}
		c.pending = pending
	}
	c.mu.Unlock()
	if clientID == "" {
		return ErrNotRegistered
	}
	req := map[string]any{}
	if session != "" {
		// The session remembers the scope; a step-up or an answer adds to it.
		req["auth_session"] = session
	} else {
		req["client_id"] = clientID
		if len(scope) == 0 {
			scope = lastScope
		}
	}
	if len(scope) > 0 {
		req["scope"] = strings.Join(scope, " ")
	}
	if len(acrValues) > 0 {
		req["acr_values"] = strings.Join(acrValues, " ")
	}
	if maxAge >= 0 {
		req["max_age"] = maxAge
	}
	if len(answers) > 0 {
		req["answers"] = answers
	}
	for round := 0; round < maxRounds; round++ {
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		resp, err := c.signed(ctx, http.MethodPost, c.meta.AuthorizationChallengeEndpoint, b, "application/json", "")
		if err != nil {
			return err
		}
		var ok struct {
			Code string `json:"authorization_code"`
		}
		err = decode(resp, http.StatusOK, &ok)
		if err == nil {
			if err := c.exchange(ctx, ok.Code); err != nil {
				return err
			}
			c.mu.Lock()
			if len(scope) > 0 {
				c.scope = scope
			}
			if c.pending == pending {
				c.pending = nil
			}
			c.mu.Unlock()
			return nil
		}
		var oe *OAuthError
		if !errors.As(err, &oe) {
			return err
		}
		if oe.Code == "invalid_session" && req["auth_session"] != nil {
			// the session ended: start a new one
			c.mu.Lock()
			c.authSession = ""
			c.mu.Unlock()
			delete(req, "auth_session")
			req["client_id"] = clientID
			if req["scope"] == nil && len(lastScope) > 0 {
				req["scope"] = strings.Join(lastScope, " ")
			}
			if pending != nil {
				// the ended session was for a step-up: ask for it again
				if len(pending.acrValues) > 0 {
					req["acr_values"] = strings.Join(pending.acrValues, " ")
				}
				if pending.maxAge >= 0 {
					req["max_age"] = pending.maxAge
				}
			}
			delete(req, "answers")
			continue
		}
		if s, _ := oe.Body["auth_session"].(string); s != "" {
			c.mu.Lock()
			c.authSession = s
			c.mu.Unlock()
			delete(req, "client_id")
			req["auth_session"] = s
		}
		if oe.Code != "insufficient_authorization" {
			return oe
		}
		challenges, _ := oe.Body["challenges"].(map[string]any)
		if len(challenges) == 0 {
			return oe
		}
		answers := map[string]any{}
		for name, ch := range challenges {
			h := c.cfg.Handlers[name]
			if h == nil {
				return fmt.Errorf("%w %q", ErrNoHandler, name)
			}
			raw, err := json.Marshal(ch)
			if err != nil {
				return err
			}
			ans, err := h(ctx, raw)
			if err != nil {
				return fmt.Errorf("moat/client: answering %s: %w", name, err)
			}
			answers[name] = ans
		}
		req["answers"] = answers
		// the request's scope and acr stay in the session; follow-ups carry answers only
		delete(req, "scope")
		delete(req, "acr_values")
		delete(req, "max_age")
	}
	return errors.New("moat/client: too many challenge rounds")
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	AuthSession  string `json:"auth_session"`
}

func (c *Client) tokenRequest(ctx context.Context, form url.Values) error {
	resp, err := c.signed(ctx, http.MethodPost, c.meta.TokenEndpoint, []byte(form.Encode()), "application/x-www-form-urlencoded", "")
	if err != nil {
		return err
	}
	var tr tokenResponse
	if err := decode(resp, http.StatusOK, &tr); err != nil {
		return err
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "DPoP") {
		return errors.New("moat/client: the server did not issue a DPoP-bound token")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accessToken = tr.AccessToken
	c.accessExp = c.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	if tr.RefreshToken != "" {
		c.refreshToken = tr.RefreshToken
	}
	if tr.AuthSession != "" {
		c.authSession = tr.AuthSession
	}
	return nil
}

func (c *Client) exchange(ctx context.Context, code string) error {
	return c.tokenRequest(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.ClientID()}})
}

// Refresh renews the access token with the refresh token.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	rt := c.refreshToken
	c.mu.Unlock()
	if rt == "" {
		return errors.New("moat/client: no refresh token; authorize first")
	}
	return c.tokenRequest(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ClientID()}})
}

// AccessToken returns the current access token ("" before authorization).
func (c *Client) AccessToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accessToken
}

// token returns a usable access token, refreshing (or authorizing again)
// when it has expired.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	at, exp := c.accessToken, c.accessExp
	c.mu.Unlock()
	if at != "" && c.cfg.Now().Add(5*time.Second).Before(exp) {
		return at, nil
	}
	if err := c.renew(ctx); err != nil {
		return "", err
	}
	return c.AccessToken(), nil
}

// renew refreshes, and authorizes again when the refresh needs it.
func (c *Client) renew(ctx context.Context) error {
	err := c.Refresh(ctx)
	var oe *OAuthError
	if err != nil && errors.As(err, &oe) && (oe.Code == "insufficient_authorization" || oe.Code == "invalid_grant") {
		return c.authorize(ctx, nil, nil, -1, nil)
	}
	return err
}

// Do sends req to a protected API with the access token and a fresh DPoP
// proof. It handles what the protocol asks of a client: a DPoP nonce, an
// expired token (refresh), an RFC 9470 step-up demand (it goes back to
// the Authorization Challenge Endpoint with its auth session, answers the
// new challenges through the handlers, and retries the request once), and,
// with Config.Updates, a mandatory update (installed, then retried once).
//
// Refusals that need the user (a blocked device or app version, a
// mandatory update, a blocked check) come back as an *OAuthError matching
// ErrDeviceBlocked, ErrAppVersionBlocked, ErrUpdateRequired or
// ErrCheckBlocked; every other answer is returned as the response.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	retried := false
	for {
		token, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.signedRequest(req, body, token)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusForbidden {
			err := policyError(resp)
			if errors.Is(err, ErrUpdateRequired) && c.cfg.Updates != nil && !retried {
				if _, uerr := c.cfg.Updates.Update(ctx); uerr != nil {
					return nil, fmt.Errorf("moat/client: installing the required update: %w", uerr)
				}
				retried = true
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		if resp.StatusCode != http.StatusUnauthorized || retried {
			return resp, nil
		}
		var ch Challenge
		for _, x := range ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate")) {
			if x.Params["error"] != "" {
				ch = x
				break
			}
		}
		switch ch.Params["error"] {
		case "insufficient_user_authentication":
			drain(resp)
			maxAge := -1
			if v, err := strconv.Atoi(ch.Params["max_age"]); err == nil && v >= 0 {
				maxAge = v
			}
			if err := c.StepUp(ctx, strings.Fields(ch.Params["acr_values"]), maxAge); err != nil {
				return nil, err
			}
		case "invalid_token":
			drain(resp)
			if err := c.renew(ctx); err != nil {
				return nil, err
			}
		default:
			return resp, nil
		}
		retried = true
	}
}

// policyError turns a 403 refusal that needs the user into an error;
// other 403s (insufficient_scope) stay responses.
func policyError(resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	e := errorFrom(resp.StatusCode, b)
	switch e.Code {
	case "device_blocked", "app_version_blocked", "update_required", "check_blocked":
		return e
	}
	return nil
}

// Logout signs this client out: the server forgets its check successes
// (and its SSO group's), ends the auth session and revokes the tokens.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	body := map[string]string{"client_id": c.clientID, "auth_session": c.authSession, "refresh_token": c.refreshToken}
	token := c.accessToken
	c.mu.Unlock()
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := c.signed(ctx, http.MethodPost, c.meta.LogoutEndpoint, b, "application/json", token)
	if err != nil {
		return err
	}
	if err := decode(resp, http.StatusNoContent, nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.accessToken, c.refreshToken, c.authSession = "", "", ""
	c.mu.Unlock()
	return nil
}
