package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

// Test checks: a password check, an SMS-like code check that needs an
// established subject, and an application check that passes without an
// answer. The real factors live in package stepup.

type passwordCheck struct {
	mu       sync.Mutex
	users    map[string]string
	failures map[string]int
}

func (c *passwordCheck) Name() string { return "UserLogin" }

func (c *passwordCheck) Authorize(_ context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Answer == nil {
		return auth.CheckResult{Status: auth.CheckChallenge, Challenge: map[string]any{"type": "password"}}, nil
	}
	var a struct{ Username, Password string }
	if err := json.Unmarshal(req.Answer, &a); err != nil {
		return auth.CheckResult{Status: auth.CheckChallenge, Challenge: map[string]any{"error": "malformed"}, Reason: "malformed"}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures[a.Username] >= 3 {
		return auth.CheckResult{Status: auth.CheckBlocked, BlockedUntil: req.Now.Add(time.Minute), Reason: "locked"}, nil
	}
	if pw, ok := c.users[a.Username]; ok && pw == a.Password {
		return auth.CheckResult{Status: auth.CheckSuccess, Subject: a.Username, AMR: []string{"pwd"}, ValidFor: time.Hour}, nil
	}
	c.failures[a.Username]++
	return auth.CheckResult{Status: auth.CheckChallenge, Challenge: map[string]any{"error": "wrong"}, Reason: "wrong_password"}, nil
}

type codeCheck struct {
	mu     sync.Mutex
	outbox map[string]string // subject -> code
	valid  time.Duration
}

func (c *codeCheck) Name() string { return "SMSOTP" }

func (c *codeCheck) Authorize(_ context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Subject == "" {
		return auth.CheckResult{Status: auth.CheckRefused, Reason: "no_subject"}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Answer != nil {
		var a struct{ Code string }
		_ = json.Unmarshal(req.Answer, &a)
		if a.Code != "" && a.Code == c.outbox[req.Subject] {
			delete(c.outbox, req.Subject)
			return auth.CheckResult{Status: auth.CheckSuccess, AMR: []string{"sms"}, ValidFor: c.valid}, nil
		}
	}
	c.outbox[req.Subject] = "123456"
	return auth.CheckResult{Status: auth.CheckChallenge, Challenge: map[string]any{"sent_to": "+1 *** 0100"}}, nil
}

type appCheck struct{ calls int }

func (c *appCheck) Name() string { return "AppCheck" }

func (c *appCheck) Authorize(context.Context, *auth.CheckRequest) (auth.CheckResult, error) {
	c.calls++
	return auth.CheckResult{Status: auth.CheckSuccess, ValidFor: 24 * time.Hour}, nil
}

// failingStore fails every operation once broken is set.
type failingStore struct {
	kv.Store
	mu     sync.Mutex
	broken bool
}

var errStoreDown = errors.New("store down")

func (f *failingStore) fail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken
}

func (f *failingStore) setBroken(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = b
}

func (f *failingStore) Get(ctx context.Context, k string) (kv.Item, error) {
	if f.fail() {
		return kv.Item{}, errStoreDown
	}
	return f.Store.Get(ctx, k)
}

func (f *failingStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) (uint64, error) {
	if f.fail() {
		return 0, errStoreDown
	}
	return f.Store.Set(ctx, k, v, ttl)
}

func (f *failingStore) CompareAndSet(ctx context.Context, k string, v []byte, ttl time.Duration, ver uint64) (uint64, error) {
	if f.fail() {
		return 0, errStoreDown
	}
	return f.Store.CompareAndSet(ctx, k, v, ttl, ver)
}

func (f *failingStore) Consume(ctx context.Context, k string) (kv.Item, error) {
	if f.fail() {
		return kv.Item{}, errStoreDown
	}
	return f.Store.Consume(ctx, k)
}

func (f *failingStore) Delete(ctx context.Context, k string) error {
	if f.fail() {
		return errStoreDown
	}
	return f.Store.Delete(ctx, k)
}

func (f *failingStore) Increment(ctx context.Context, k string, d int64, ttl time.Duration) (int64, error) {
	if f.fail() {
		return 0, errStoreDown
	}
	return f.Store.Increment(ctx, k, d, ttl)
}

type harness struct {
	t        testing.TB
	clock    *kvtest.Clock
	store    *failingStore
	clients  *auth.MemoryClients
	keys     *auth.KeySet
	srv      *auth.Server
	res      *auth.Resource
	ts       *httptest.Server
	password *passwordCheck
	sms      *codeCheck
	app      *appCheck
	policy   *switchPolicy
	events   *eventLog
}

// switchPolicy refuses clients whose device id is in blocked.
type switchPolicy struct {
	mu      sync.Mutex
	blocked map[string]bool
}

func (p *switchPolicy) AllowClient(_ context.Context, c *auth.Client) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked[c.DeviceID] {
		return &auth.Refusal{Code: "device_blocked", Description: "this device is blocked", Extra: map[string]any{"message": "Reported stolen"}}
	}
	return nil
}

func (p *switchPolicy) block(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[device] = true
}

type eventLog struct {
	mu     sync.Mutex
	events []auth.Event
}

func (l *eventLog) add(_ context.Context, e auth.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

const (
	acrOne = "urn:test:1fa"
	acrMFA = "urn:test:mfa"
)

func newHarness(t testing.TB, tweak ...func(*auth.Config)) *harness {
	t.Helper()
	h := &harness{
		t: t, clock: kvtest.NewClock(), clients: auth.NewMemoryClients(),
		password: &passwordCheck{users: map[string]string{"alice": "correct horse", "bob": "battery staple"}, failures: map[string]int{}},
		sms:      &codeCheck{outbox: map[string]string{}, valid: 5 * time.Minute},
		app:      &appCheck{},
		policy:   &switchPolicy{blocked: map[string]bool{}},
		events:   &eventLog{},
	}
	h.clock.Advance(time.Until(h.clock.Now()) * -1) // start at the real time so TLS-free tests read naturally
	h.store = &failingStore{Store: kv.NewMemory(kv.MemoryConfig{Now: h.clock.Now})}
	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	h.keys, err = auth.NewKeySet(signer, 1)
	require.NoError(t, err)
	h.ts = httptest.NewUnstartedServer(nil)
	issuer := "http://" + h.ts.Listener.Addr().String()
	secretHash := auth.HashClientSecret("introspector-secret")
	cfg := auth.Config{
		Issuer: issuer, Store: h.store, Clients: h.clients, Keys: h.keys,
		Checks:          []auth.Check{h.password, h.sms, h.app},
		MandatoryChecks: []string{"AppCheck"},
		Scopes: []auth.ScopeRule{
			{Scope: "reservations", Checks: []string{"UserLogin"}},
			{Scope: "payments", Checks: []string{"UserLogin"}},
			{Scope: "transfer", Checks: []string{"UserLogin", "SMSOTP"}},
			{Scope: "public"},
		},
		ACRs:               []auth.ACR{{Value: acrOne, Checks: []string{"UserLogin"}}, {Value: acrMFA, Checks: []string{"UserLogin", "SMSOTP"}}},
		RegistrationPolicy: auth.InsecureAcceptAllRegistrations,
		ClientPolicy:       h.policy,
		ConfidentialClients: []auth.ConfidentialClient{
			{ID: "introspector", SecretHash: secretHash, Scopes: []string{auth.IntrospectScope, "reports"}},
		},
		OnEvent: h.events.add,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     h.clock.Now,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h.srv, err = auth.NewServer(cfg)
	require.NoError(t, err)
	h.res, err = auth.NewResource(auth.ResourceConfig{
		Validator: h.srv.Validator(), DPoP: h.srv.DPoP(), Store: h.store, Origin: issuer,
		AcceptBearerTokens: true, Now: h.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	h.srv.Mount(mux)
	mux.Handle("GET /reservations/{id}", h.res.Require("reservations")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte("reservation " + r.PathValue("id") + " for " + p.Subject))
	})))
	mux.Handle("POST /reservations/{id}/pay", h.res.Require("payments")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		at, ok := p.AMRTimes["sms"]
		if !p.HasAMR("sms") || !ok || h.clock.Now().Sub(at) > 5*time.Minute {
			auth.WriteResourceError(w, r, &auth.ResourceError{
				Status: http.StatusUnauthorized, Code: auth.CodeInsufficientUserAuthentication,
				Description: "an SMS code is required", ACRValues: []string{acrMFA}, MaxAge: 300,
			})
			return
		}
		_, _ = w.Write([]byte("paid"))
	})))
	mux.Handle("GET /reports", h.res.Require("reports")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("report"))
	})))
	h.ts.Config.Handler = mux
	h.ts.Start()
	t.Cleanup(h.ts.Close)
	return h
}

func (h *harness) issuer() string { return h.srv.Issuer() }

// newClient returns a registered client for device with handlers that
// answer as user.
func (h *harness) newClient(device, user, password string) *client.Client {
	h.t.Helper()
	c, err := client.New(context.Background(), client.Config{
		Issuer: h.issuer(), AppID: "com.example.travel", AppVersion: "1.10.0", Platform: "ios",
		Channel: "phone", DeviceID: device, Now: h.clock.Now,
		Handlers: map[string]client.ChallengeHandler{
			"UserLogin": func(context.Context, json.RawMessage) (any, error) {
				return map[string]string{"username": user, "password": password}, nil
			},
			"SMSOTP": func(context.Context, json.RawMessage) (any, error) {
				h.sms.mu.Lock()
				defer h.sms.mu.Unlock()
				return map[string]string{"code": h.sms.outbox[user]}, nil
			},
		},
	})
	require.NoError(h.t, err)
	require.NoError(h.t, c.Register(context.Background()))
	return c
}

func (h *harness) get(c *client.Client, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, h.issuer()+path, nil)
	require.NoError(h.t, err)
	return c.Do(req)
}

func (h *harness) post(c *client.Client, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, h.issuer()+path, nil)
	require.NoError(h.t, err)
	return c.Do(req)
}

// raw is a hand-driven client for tests that send what a well-behaved
// client never would.
type raw struct {
	h   *harness
	key *ecdsa.PrivateKey
	ps  *client.ProofSigner
	id  string
}

func (h *harness) raw() *raw {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(h.t, err)
	ps, err := client.NewProofSigner(k)
	require.NoError(h.t, err)
	return &raw{h: h, key: k, ps: ps}
}

func (r *raw) proof(method, path, token string) string {
	p, err := r.ps.Proof(method, r.h.issuer()+path, token, "", r.h.clock.Now())
	require.NoError(r.h.t, err)
	return p
}

// do sends a request; body may be a string (sent as is) or any value
// (sent as JSON). It returns the status and the decoded JSON body.
func (r *raw) do(method, path string, body any, contentType string, hdr map[string]string) (int, map[string]any, http.Header) {
	r.h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(r.h.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, r.h.issuer()+path, rd)
	require.NoError(r.h.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.h.t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp.Header
}

func (r *raw) nonce() string {
	_, out, _ := r.do("POST", "/oauth/nonce", nil, "", nil)
	n, _ := out["nonce"].(string)
	require.NotEmpty(r.h.t, n)
	return n
}

func (r *raw) registration() map[string]any {
	return map[string]any{
		"app_id": "com.example.travel", "app_version": "1.10.0", "platform": "ios", "channel": "phone",
		"device_id": "raw-device", "jwk": r.ps.PublicJWK(), "nonce": r.nonce(),
	}
}

func (r *raw) register() {
	status, out, _ := r.do("POST", "/oauth/register", r.registration(), "application/json",
		map[string]string{"DPoP": r.proof("POST", "/oauth/register", "")})
	require.Equal(r.h.t, http.StatusCreated, status, out)
	r.id = out["client_id"].(string)
}

func (r *raw) challenge(body map[string]any) (int, map[string]any) {
	status, out, _ := r.do("POST", "/oauth/authorize-challenge", body, "application/json",
		map[string]string{"DPoP": r.proof("POST", "/oauth/authorize-challenge", "")})
	return status, out
}

func (r *raw) token(form url.Values) (int, map[string]any) {
	status, out, _ := r.do("POST", "/oauth/token", form.Encode(), "application/x-www-form-urlencoded",
		map[string]string{"DPoP": r.proof("POST", "/oauth/token", "")})
	return status, out
}

// login signs in as alice and returns the code.
func (r *raw) code(scope string) string {
	status, out := r.challenge(map[string]any{"client_id": r.id, "scope": scope})
	if status == http.StatusOK { // the password's success still holds
		return out["authorization_code"].(string)
	}
	require.Equal(r.h.t, http.StatusUnauthorized, status, out)
	status, out = r.challenge(map[string]any{"auth_session": out["auth_session"],
		"answers": map[string]any{"UserLogin": map[string]string{"username": "alice", "password": "correct horse"}}})
	require.Equal(r.h.t, http.StatusOK, status, out)
	return out["authorization_code"].(string)
}
