package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
)

const (
	adminToken  = "admin-token-0123456789abcdef0123456789"
	viewerToken = "viewer-token-0123456789abcdef012345678"
)

type operatorFixture struct {
	*fixture
	srv *httptest.Server
}

func newOperatorFixture(t *testing.T) *operatorFixture {
	t.Helper()
	f := newFixture(t)
	authz, err := device.NewTokenAuthorizer(
		device.OperatorToken{Operator: "alice@ops", Token: adminToken},
		device.OperatorToken{Operator: "victor@support", Token: viewerToken, ReadOnly: true},
	)
	require.NoError(t, err)
	h, err := device.NewOperatorHandler(f.ctl, device.OperatorConfig{Authorizer: authz, Logger: quiet})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/device/", http.StripPrefix("/admin/device", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &operatorFixture{fixture: f, srv: srv}
}

// call sends a request and decodes the JSON answer.
func (o *operatorFixture) call(t *testing.T, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, o.srv.URL+"/admin/device"+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := o.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	if resp.StatusCode == http.StatusUnauthorized {
		require.Equal(t, `Bearer realm="moat-device"`, resp.Header.Get("WWW-Authenticate"))
	}
	return resp.StatusCode, out
}

func TestOperatorHandlerRequiresAuthorizer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := device.NewOperatorHandler(f.ctl, device.OperatorConfig{})
	require.ErrorContains(t, err, "needs an Authorizer")
	_, err = device.NewOperatorHandler(f.ctl, device.OperatorConfig{Authorizer: device.AuthorizerFunc(nil)})
	require.ErrorContains(t, err, "needs an Authorizer", "a nil function is no authorizer either")
	_, err = device.NewOperatorHandler(nil, device.OperatorConfig{Authorizer: device.AuthorizerFunc(func(*http.Request, device.Operation) (string, error) { return "x", nil })})
	require.Error(t, err)
}

func TestTokenAuthorizerValidation(t *testing.T) {
	t.Parallel()
	_, err := device.NewTokenAuthorizer()
	require.Error(t, err)
	_, err = device.NewTokenAuthorizer(device.OperatorToken{Operator: "a", Token: "short"})
	require.ErrorContains(t, err, "shorter than")
	_, err = device.NewTokenAuthorizer(device.OperatorToken{Token: adminToken})
	require.Error(t, err)
	_, err = device.NewTokenAuthorizer(device.OperatorToken{Operator: "a", Token: adminToken}, device.OperatorToken{Operator: "b", Token: adminToken})
	require.ErrorContains(t, err, "twice")
}

func TestOperatorUnauthorizedChangesNothing(t *testing.T) {
	t.Parallel()
	o := newOperatorFixture(t)
	o.client(t, "dev-1", "1.0")
	for _, tc := range []struct {
		token, method, path, body string
		status                    int
	}{
		{"", "PUT", "/devices/dev-1/status", `{"status":"stolen","reason":"x"}`, 401},
		{"wrong-token-0123456789abcdef0123456789", "PUT", "/devices/dev-1/status", `{"status":"stolen","reason":"x"}`, 401},
		{viewerToken, "PUT", "/devices/dev-1/status", `{"status":"stolen","reason":"x"}`, 403},
		{"", "PUT", "/devices/dev-1/apps/" + app + "/status", `{"status":"disabled","reason":"x"}`, 401},
		{viewerToken, "PUT", "/devices/dev-1/apps/" + app + "/status", `{"status":"disabled","reason":"x"}`, 403},
		{"", "POST", "/devices/dev-1/unregister", `{"reason":"x"}`, 401},
		{"Bearer", "PUT", "/devices/dev-1/status", `{"status":"stolen","reason":"x"}`, 401},
		{viewerToken, "POST", "/devices/dev-1/unregister", `{"reason":"x"}`, 403},
		{viewerToken, "PUT", "/policies/" + app + "/ios", `{"min_version":"9.0","reason":"x"}`, 403},
		{"", "PUT", "/policies/" + app + "/ios", `{"min_version":"9.0","reason":"x"}`, 401},
		{viewerToken, "DELETE", "/policies/" + app + "/ios?reason=x", "", 403},
		{"", "GET", "/devices", "", 401},
		{"", "GET", "/audit", "", 401},
		{"", "GET", "/policies", "", 401},
	} {
		status, body := o.call(t, tc.token, tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, status, "%s %s", tc.method, tc.path)
		require.NotEmpty(t, body["error"])
	}
	d, err := o.ctl.Device(context.Background(), "dev-1")
	require.NoError(t, err)
	require.Equal(t, device.Active, d.Status)
	require.Len(t, d.Apps, 1)
	require.Equal(t, device.Active, d.Apps[0].Status)
	_, err = o.ctl.Check(context.Background(), device.Client{DeviceID: "dev-1", AppID: app, Platform: platform, AppVersion: "1.0", ClientID: "client-dev-1"})
	require.NoError(t, err, "the device still gets in")
	_, err = o.ctl.Policy(context.Background(), app, "ios")
	require.ErrorIs(t, err, device.ErrNotFound)
	entries, err := o.ctl.Audit(context.Background(), device.AuditQuery{})
	require.NoError(t, err)
	require.Empty(t, entries)

	// A viewer may read.
	status, _ := o.call(t, viewerToken, "GET", "/devices/dev-1", "")
	require.Equal(t, 200, status)
}

func TestOperatorDevices(t *testing.T) {
	t.Parallel()
	o := newOperatorFixture(t)
	c := o.client(t, "dev-1", "1.0")
	o.client(t, "dev/2 with space", "1.0")
	require.NoError(t, o.ctl.Seen(context.Background(), c, device.Info{UserID: "ben", DisplayName: "Ben's phone"}))

	status, page := o.call(t, adminToken, "GET", "/devices?user=ben", "")
	require.Equal(t, 200, status)
	devices := page["devices"].([]any)
	require.Len(t, devices, 1)
	require.Equal(t, "dev-1", devices[0].(map[string]any)["id"])

	status, page = o.call(t, adminToken, "GET", "/devices?name=BEN&limit=1", "")
	require.Equal(t, 200, status)
	require.Len(t, page["devices"], 1)

	status, page = o.call(t, adminToken, "GET", "/devices?limit=1", "")
	require.Equal(t, 200, status)
	require.Equal(t, "dev-1", page["next"])

	status, dev := o.call(t, adminToken, "GET", "/devices/dev%2F2%20with%20space", "")
	require.Equal(t, 200, status, "ids are path segments, percent-encoded")
	require.Equal(t, "dev/2 with space", dev["id"])

	status, body := o.call(t, adminToken, "GET", "/devices/nope", "")
	require.Equal(t, 404, status)
	require.Equal(t, "not_found", body["error"])

	status, _ = o.call(t, adminToken, "GET", "/devices?status=bogus", "")
	require.Equal(t, 400, status)
	status, _ = o.call(t, adminToken, "GET", "/devices?limit=-1", "")
	require.Equal(t, 400, status)

	// Mark stolen: the next check is refused.
	status, entry := o.call(t, adminToken, "PUT", "/devices/dev-1/status", `{"status":"stolen","reason":"owner called"}`)
	require.Equal(t, 200, status)
	require.Equal(t, "alice@ops", entry["actor"], "the audit names the authorized operator")
	require.Equal(t, "active", entry["from"])
	require.Equal(t, "stolen", entry["to"])
	_, err := o.ctl.Check(context.Background(), c)
	requireRefused(t, err, device.CodeDeviceBlocked)

	// Validation.
	for _, tc := range []struct{ path, body string }{
		{"/devices/dev-1/status", `{"status":"vanished","reason":"x"}`},
		{"/devices/dev-1/status", `{"status":"lost"}`},
		{"/devices/dev-1/status", `{"status":"lost","reason":"x","extra":1}`},
		{"/devices/dev-1/status", `{"status":`},
		{"/devices/dev-1/apps/" + app + "/status", `{"status":"stolen","reason":"x"}`},
	} {
		status, body := o.call(t, adminToken, "PUT", tc.path, tc.body)
		require.Equal(t, 400, status, tc.body)
		require.Equal(t, "invalid_request", body["error"])
	}
	status, _ = o.call(t, adminToken, "PUT", "/devices/nope/status", `{"status":"lost","reason":"x"}`)
	require.Equal(t, 404, status)

	// Per-app status and restore.
	status, entry = o.call(t, adminToken, "PUT", "/devices/dev-1/apps/"+app+"/status", `{"status":"disabled","reason":"abuse"}`)
	require.Equal(t, 200, status)
	require.Equal(t, app, entry["app_id"])
	status, _ = o.call(t, adminToken, "PUT", "/devices/dev-1/status", `{"status":"active","reason":"found"}`)
	require.Equal(t, 200, status)
	status, _ = o.call(t, adminToken, "PUT", "/devices/dev-1/apps/"+app+"/status", `{"status":"active","reason":"ok"}`)
	require.Equal(t, 200, status)
	_, err = o.ctl.Check(context.Background(), c)
	require.NoError(t, err)

	// Audit trail, newest first, paged.
	status, audit := o.call(t, adminToken, "GET", "/devices/dev-1/audit", "")
	require.Equal(t, 200, status)
	entries := audit["entries"].([]any)
	require.Len(t, entries, 4)
	require.Equal(t, "ok", entries[0].(map[string]any)["reason"])
	require.Equal(t, "owner called", entries[3].(map[string]any)["reason"])
	status, audit = o.call(t, adminToken, "GET", "/audit?device=dev-1&limit=3", "")
	require.Equal(t, 200, status)
	require.Len(t, audit["entries"], 3)
	next := audit["next"].(float64)
	status, audit = o.call(t, adminToken, "GET", fmt.Sprintf("/audit?device=dev-1&limit=3&before=%d", uint64(next)), "")
	require.Equal(t, 200, status)
	require.Len(t, audit["entries"], 1)
	require.NotContains(t, audit, "next")
	status, _ = o.call(t, adminToken, "GET", "/audit?before=x", "")
	require.Equal(t, 400, status)

	// Unregister: refused while blocked, then done.
	status, _ = o.call(t, adminToken, "PUT", "/devices/dev-1/status", `{"status":"lost","reason":"r"}`)
	require.Equal(t, 200, status)
	status, body = o.call(t, adminToken, "POST", "/devices/dev-1/unregister", `{"reason":"user left"}`)
	require.Equal(t, 409, status)
	require.Equal(t, "device_blocked", body["error"])
	status, _ = o.call(t, adminToken, "PUT", "/devices/dev-1/status", `{"status":"active","reason":"r"}`)
	require.Equal(t, 200, status)
	status, entry = o.call(t, adminToken, "POST", "/devices/dev-1/unregister", `{"reason":"user left"}`)
	require.Equal(t, 200, status)
	require.Equal(t, "unregister", entry["action"])
	_, err = o.ctl.Check(context.Background(), c)
	requireRefused(t, err, device.CodeDeviceBlocked)
	status, _ = o.call(t, adminToken, "GET", "/devices/dev-1", "")
	require.Equal(t, 404, status)
}

func TestOperatorPolicies(t *testing.T) {
	t.Parallel()
	o := newOperatorFixture(t)
	c := o.client(t, "dev-1", "1.9.0")
	path := "/policies/" + app + "/ios"

	status, _ := o.call(t, adminToken, "GET", path, "")
	require.Equal(t, 404, status)

	// Notify first.
	status, entry := o.call(t, adminToken, "PUT", path, `{"min_version":"1.10.0","action":"notify","message":"Please update",
		"translations":{"fr":"Mettez à jour"},"download_url":"https://apps.apple.com/app/id1","reason":"CVE-2026-1"}`)
	require.Equal(t, 200, status)
	require.Equal(t, "set_policy", entry["action"])
	require.Equal(t, "alice@ops", entry["actor"])
	n, err := o.ctl.Check(context.Background(), c)
	require.NoError(t, err)
	require.Equal(t, "Please update", n.Message)

	status, p := o.call(t, viewerToken, "GET", path, "")
	require.Equal(t, 200, status)
	require.Equal(t, "1.10.0", p["min_version"])
	require.Equal(t, "notify", p["action"])
	require.Equal(t, "alice@ops", p["updated_by"])

	// Then block.
	status, _ = o.call(t, adminToken, "PUT", path, `{"min_version":"1.10.0","message":"Update required","reason":"enforce"}`)
	require.Equal(t, 200, status)
	_, err = o.ctl.Check(context.Background(), c)
	requireRefused(t, err, device.CodeAppVersionBlocked)

	status, list := o.call(t, viewerToken, "GET", "/policies", "")
	require.Equal(t, 200, status)
	require.Len(t, list["policies"], 1)

	for _, body := range []string{
		`{"min_version":"1.x","reason":"r"}`,
		`{"min_version":"1.0","action":"warn","reason":"r"}`,
		`{"min_version":"1.0","download_url":"javascript:alert(1)","reason":"r"}`,
		`{"min_version":"1.0","download_url":"http://insecure.example/app","reason":"r"}`,
		`{"min_version":"1.0"}`,
		`{"min_version":"1.0","translations":{"not a tag":"x"},"reason":"r"}`,
		`{"min_version":"1.0","app_id":"other","reason":"r"}`,
	} {
		status, body2 := o.call(t, adminToken, "PUT", path, body)
		require.Equal(t, 400, status, body)
		require.Equal(t, "invalid_request", body2["error"])
	}

	status, entry = o.call(t, adminToken, "DELETE", path+"?reason=rollback", "")
	require.Equal(t, 200, status)
	require.Equal(t, "delete_policy", entry["action"])
	status, _ = o.call(t, adminToken, "DELETE", path+"?reason=again", "")
	require.Equal(t, 204, status)
	status, _ = o.call(t, adminToken, "DELETE", path, "")
	require.Equal(t, 400, status, "a reason is required")
	_, err = o.ctl.Check(context.Background(), c)
	require.NoError(t, err)

	status, audit := o.call(t, adminToken, "GET", "/audit?app="+app, "")
	require.Equal(t, 200, status)
	require.Len(t, audit["entries"], 3)
}

func TestOperatorAuthorizerErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		operator string
		err      error
		status   int
	}{
		{"", errors.New("identity provider down"), 503},
		{"", nil, 500},
		{"", device.ErrForbidden, 403},
		{"", errors.Join(errors.New("expired"), device.ErrUnauthorized), 401},
	} {
		h, err := device.NewOperatorHandler(f.ctl, device.OperatorConfig{Logger: quiet,
			Authorizer: device.AuthorizerFunc(func(*http.Request, device.Operation) (string, error) { return tc.operator, tc.err })})
		require.NoError(t, err)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/devices", nil))
		require.Equal(t, tc.status, w.Code)
	}
}

func TestOperatorStoreDown(t *testing.T) {
	t.Parallel()
	o := newOperatorFixture(t)
	o.store.Store = downStore{o.store.Store}
	status, body := o.call(t, adminToken, "GET", "/devices", "")
	require.Equal(t, 503, status)
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.NotContains(t, body["error_description"], "store down")
}

type downStore struct{ device.Store }

func (downStore) Search(context.Context, device.Query) (device.Page, error) {
	return device.Page{}, errStoreDown
}

func TestOperatorNotPropagatedWarning(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.Invalidator = &brokenInvalidator{} })
	f.client(t, "dev-1", "1.0")
	h, err := device.NewOperatorHandler(f.ctl, device.OperatorConfig{Logger: quiet,
		Authorizer: device.AuthorizerFunc(func(*http.Request, device.Operation) (string, error) { return "op", nil })})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "/devices/dev-1/status", strings.NewReader(`{"status":"lost","reason":"r"}`))
	h.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "lost", body["to"])
	require.Contains(t, body["warning"], "other instances")
}
