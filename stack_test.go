package moat_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
)

type env struct {
	t      *testing.T
	stack  *moat.Stack
	ts     *httptest.Server
	mux    *http.ServeMux
	hasher *stepup.PasswordHasher
}

func newEnv(t *testing.T, mut ...func(*moat.Config)) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	store := kv.NewMemory(kv.MemoryConfig{})
	hasher, err := stepup.NewPasswordHasher(stepup.HasherConfig{Params: stepup.Argon2idParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, InsecureWeakParams: true})
	require.NoError(t, err)
	dir := stepup.NewMemoryDirectory(hasher)
	require.NoError(t, dir.AddUser(context.Background(), "alice", "user-alice", "a long password"))
	login, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: dir, Hasher: hasher, Store: store})
	require.NoError(t, err)
	dev, err := attest.NewInsecureDevelopmentVerifier(attest.FormatInsecureDevelopment)
	require.NoError(t, err)
	cfg := moat.Config{
		Auth: auth.Config{
			Issuer: issuer, Store: store, Clients: auth.NewMemoryClients(), Keys: keys, Checks: []auth.Check{login},
			Scopes:              []auth.ScopeRule{{Scope: "read", Checks: []string{"UserLogin"}}, {Scope: "write", Checks: []string{"UserLogin"}}},
			ACRs:                []auth.ACR{{Value: stepup.ACROneFactor, Checks: []string{"UserLogin"}}},
			ConfidentialClients: []auth.ConfidentialClient{{ID: "batch", SecretHash: auth.HashClientSecret("batch-secret"), Scopes: []string{"read"}}},
		},
		Devices:            device.Config{Store: device.NewMemory(device.MemoryConfig{})},
		Attestation:        attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{dev}}}},
		AcceptBearerTokens: true,
	}
	for _, m := range mut {
		m(&cfg)
	}
	stack, err := moat.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Close() })
	mux := http.NewServeMux()
	stack.Mount(mux)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte("hello " + p.Subject))
	})
	mux.Handle("GET /read", stack.MustProtect(moat.Route{Scopes: []string{"read"}})(ok))
	mux.Handle("GET /write", stack.MustProtect(moat.Route{Scopes: []string{"write"}})(ok))
	mux.Handle("GET /panic", stack.MustProtect(moat.Route{Scopes: []string{"read"}})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return &env{t: t, stack: stack, ts: ts, mux: mux, hasher: hasher}
}

func (e *env) app(device string, version string) *client.Client {
	e.t.Helper()
	key, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(e.t, err)
	c, err := client.New(context.Background(), client.Config{
		Issuer: e.ts.URL, Key: key, AppID: "com.example.app", AppVersion: version, Platform: "android", Channel: "phone", DeviceID: device,
		Attest: func(_ context.Context, nonce, _ string) (json.RawMessage, error) {
			return attest.InsecureDevelopmentEvidence(key, nonce)
		},
		Handlers: map[string]client.ChallengeHandler{"UserLogin": func(context.Context, json.RawMessage) (any, error) {
			return stepup.PasswordAnswer{Username: "alice", Password: "a long password"}, nil
		}},
	})
	require.NoError(e.t, err)
	return c
}

func (e *env) get(c *client.Client, path string) (*http.Response, error) {
	req, err := http.NewRequest("GET", e.ts.URL+path, nil)
	require.NoError(e.t, err)
	return c.Do(req)
}

func TestStackStagesInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.app("dev-1", "1.0.0")
	require.NoError(t, c.Register(ctx))
	require.NoError(t, c.Authorize(ctx, "read"))
	resp, err := e.get(c, "/read")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	// Scope comes after the device stage: with a notify policy, a refusal
	// for scope still carries the notice.
	_, err = e.stack.Devices().SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{
		AppID: "com.example.app", Platform: "android", MinVersion: "2.0.0", Action: device.Notify, Message: "please update",
	}, Actor: "test", Reason: "test"})
	require.NoError(t, err)
	resp, err = e.get(c, "/write")
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	require.Equal(t, "insufficient_scope", body["error"])
	require.Equal(t, "please update", body[device.NoticeField].(map[string]any)["message"])
	require.NotEmpty(t, resp.Header.Get(device.NoticeHeader))

	// A panic in the handler is answered 500.
	resp, err = e.get(c, "/panic")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	resp.Body.Close()

	// The device stage refuses a stolen device before scope is looked at.
	_, err = e.stack.Devices().SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Stolen, Actor: "ops", Reason: "stolen"})
	require.NoError(t, err)
	_, err = e.get(c, "/write")
	require.ErrorIs(t, err, client.ErrDeviceBlocked)
	require.ErrorIs(t, c.Refresh(ctx), client.ErrDeviceBlocked, "a refresh is refused too")
}

func TestStackConfidentialClientsSkipDeviceStage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	req, err := http.NewRequest("POST", e.ts.URL+"/oauth/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("batch", "batch-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var tok map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	req, _ = http.NewRequest("GET", e.ts.URL+"/read", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
}

func TestStackVersionBlockedAtRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.stack.Devices().SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{
		AppID: "com.example.app", Platform: "android", MinVersion: "1.10.0", Message: "update", DownloadURL: "https://example.com/app",
	}, Actor: "ops", Reason: "security fix"})
	require.NoError(t, err)
	for v, ok := range map[string]bool{"1.9.1": false, "1.10.0": true, "1.10": true, "1.x": false, "": false} {
		err := e.app("dev-"+v, v).Register(ctx)
		if ok {
			require.NoError(t, err, v)
		} else {
			require.ErrorIs(t, err, client.ErrAppVersionBlocked, v)
		}
	}
}

func TestStackConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := moat.New(moat.Config{})
	require.Error(t, err)
	e := newEnv(t)
	_, err = e.stack.Protect(moat.Route{StepUp: &stepup.Policy{}})
	require.Error(t, err, "an invalid step-up policy is refused at setup")
	require.Panics(t, func() { e.stack.MustProtect(moat.Route{StepUp: &stepup.Policy{}}) })
	_, err = moat.New(moat.Config{Auth: auth.Config{Store: kv.NewMemory(kv.MemoryConfig{}), RegistrationPolicy: auth.InsecureAcceptAllRegistrations}})
	require.Error(t, err, "the stack builds the registration policy itself")
	_ = time.Second
}

var errDown = errors.New("store down")

// brokenKV fails every operation while broken is set.
type brokenKV struct {
	kv.Store
	broken atomic.Bool
}

func (b *brokenKV) Get(ctx context.Context, k string) (kv.Item, error) {
	if b.broken.Load() {
		return kv.Item{}, errDown
	}
	return b.Store.Get(ctx, k)
}

func (b *brokenKV) Set(ctx context.Context, k string, v []byte, ttl time.Duration) (uint64, error) {
	if b.broken.Load() {
		return 0, errDown
	}
	return b.Store.Set(ctx, k, v, ttl)
}

func (b *brokenKV) CompareAndSet(ctx context.Context, k string, v []byte, ttl time.Duration, ver uint64) (uint64, error) {
	if b.broken.Load() {
		return 0, errDown
	}
	return b.Store.CompareAndSet(ctx, k, v, ttl, ver)
}

func (b *brokenKV) Delete(ctx context.Context, k string) error {
	if b.broken.Load() {
		return errDown
	}
	return b.Store.Delete(ctx, k)
}

func (b *brokenKV) Consume(ctx context.Context, k string) (kv.Item, error) {
	if b.broken.Load() {
		return kv.Item{}, errDown
	}
	return b.Store.Consume(ctx, k)
}

func (b *brokenKV) Increment(ctx context.Context, k string, d int64, ttl time.Duration) (int64, error) {
	if b.broken.Load() {
		return 0, errDown
	}
	return b.Store.Increment(ctx, k, d, ttl)
}

// brokenDevices fails the device registry's reads and writes while broken
// is set.
type brokenDevices struct {
	device.Store
	broken atomic.Bool
}

func (b *brokenDevices) State(ctx context.Context, d, a string) (device.State, error) {
	if b.broken.Load() {
		return device.State{}, errDown
	}
	return b.Store.State(ctx, d, a)
}

func (b *brokenDevices) Policy(ctx context.Context, a, p string) (device.Policy, error) {
	if b.broken.Load() {
		return device.Policy{}, errDown
	}
	return b.Store.Policy(ctx, a, p)
}

func (b *brokenDevices) Seen(ctx context.Context, sg device.Sighting) error {
	if b.broken.Load() {
		return errDown
	}
	return b.Store.Seen(ctx, sg)
}

// A store error anywhere on a request path is answered 503, never a pass:
// the device registry on a protected request, a refresh and a
// registration; the shared kv store on a protected request (DPoP replay
// cache), a refresh and a sign-in.
func TestStackStoreFailuresFailClosed(t *testing.T) {
	t.Parallel()
	kvs, devs := &brokenKV{}, &brokenDevices{}
	e := newEnv(t, func(c *moat.Config) {
		kvs.Store, c.Auth.Store = c.Auth.Store, kvs
		devs.Store, c.Devices.Store = c.Devices.Store, devs
		c.Devices.CacheTTL = -1 // every check reads the store
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	ctx := context.Background()
	c := e.app("dev-1", "1.0.0")
	require.NoError(t, c.Register(ctx))
	require.NoError(t, c.Authorize(ctx, "read"))
	unavailable := func(what string, err error) {
		t.Helper()
		var oe *client.OAuthError
		require.ErrorAs(t, err, &oe, what)
		require.Equal(t, http.StatusServiceUnavailable, oe.Status, what)
		require.Equal(t, "temporarily_unavailable", oe.Code, what)
		require.NotContains(t, oe.Description, "store down", what)
	}
	read := func(what string) {
		t.Helper()
		resp, err := e.get(c, "/read")
		require.NoError(t, err, what)
		defer resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, what)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.Equal(t, "temporarily_unavailable", body["error"], what)
	}

	devs.broken.Store(true)
	read("device store down, protected request")
	unavailable("device store down, refresh", c.Refresh(ctx))
	unavailable("device store down, registration", e.app("dev-2", "1.0.0").Register(ctx))
	devs.broken.Store(false)

	kvs.broken.Store(true)
	read("kv store down, protected request")
	unavailable("kv store down, refresh", c.Refresh(ctx))
	unavailable("kv store down, sign-in", c.Authorize(ctx, "read"))
	kvs.broken.Store(false)

	resp, err := e.get(c, "/read")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "back to normal once the stores are")
	resp.Body.Close()
}
