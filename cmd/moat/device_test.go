package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
)

const (
	cliAdminToken  = "cli-admin-token-0123456789abcdef0123456789"
	cliViewerToken = "cli-viewer-token-0123456789abcdef012345678"
)

// deviceServer runs the operator API over a Control with two registered
// devices; it returns the Control and the env for the CLI.
func deviceServer(t *testing.T, tlsServer bool) (*device.Control, *httptest.Server, map[string]string) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctl, err := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{}), Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ctl.Close() })
	ctx := context.Background()
	for _, c := range []struct {
		id, user, name string
	}{{"d-4711", "ana", "Ana's iPhone"}, {"d/slash 2", "ben", "Ben's phone"}} {
		require.NoError(t, ctl.Register(ctx, device.Client{DeviceID: c.id, AppID: "com.example.travel", Platform: "ios", AppVersion: "1.9.1", ClientID: "c-" + c.id},
			device.Info{UserID: c.user, DisplayName: c.name, Model: "iPhone15,2"}))
	}
	authz, err := device.NewTokenAuthorizer(
		device.OperatorToken{Operator: "alice@ops", Token: cliAdminToken},
		device.OperatorToken{Operator: "viewer", Token: cliViewerToken, ReadOnly: true},
	)
	require.NoError(t, err)
	h, err := device.NewOperatorHandler(ctl, device.OperatorConfig{Authorizer: authz, Logger: quiet})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/device/", http.StripPrefix("/admin/device", h))
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(srv.Close)
	return ctl, srv, map[string]string{deviceURLEnv: srv.URL + "/admin/device/", deviceTokenEnv: cliAdminToken}
}

func TestDeviceCLIList(t *testing.T) {
	t.Parallel()
	_, _, env := deviceServer(t, false)
	code, out, errOut := runCLI(t, "", env, "device", "list")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "ID")
	require.Contains(t, out, "d-4711")
	require.Contains(t, out, "Ana's iPhone")
	require.Contains(t, out, "d/slash 2")

	code, out, _ = runCLI(t, "", env, "device", "list", "--user", "ben")
	require.Equal(t, exitOK, code)
	require.NotContains(t, out, "d-4711")
	require.Contains(t, out, "d/slash 2")

	code, out, _ = runCLI(t, "", env, "device", "list", "--limit", "1")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "more: --after d-4711")

	code, out, _ = runCLI(t, "", env, "device", "list", "--name", "ana", "--json")
	require.Equal(t, exitOK, code)
	var page device.Page
	require.NoError(t, json.Unmarshal([]byte(out), &page))
	require.Len(t, page.Devices, 1)

	code, _, errOut = runCLI(t, "", env, "device", "list", "--status", "vanished")
	require.Equal(t, exitUsage, code, "a 400 is a usage error")
	require.Contains(t, errOut, "invalid_request")
}

func TestDeviceCLIStatusAndSetStatus(t *testing.T) {
	t.Parallel()
	ctl, _, env := deviceServer(t, false)
	ctx := context.Background()
	phone := device.Client{DeviceID: "d-4711", AppID: "com.example.travel", Platform: "ios", AppVersion: "1.9.1", ClientID: "c-d-4711"}

	code, out, errOut := runCLI(t, "", env, "device", "status", "d-4711")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "status:")
	require.Contains(t, out, "active")
	require.Contains(t, out, "com.example.travel 1.9.1 (active")

	code, out, errOut = runCLI(t, "", env, "device", "set-status", "d-4711", "stolen", "--reason", "owner reported theft")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "d-4711: active -> stolen")
	require.Contains(t, out, "by alice@ops")
	_, err := ctl.Check(ctx, phone)
	var r *device.Refusal
	require.ErrorAs(t, err, &r, "the next request is refused")

	code, out, errOut = runCLI(t, "", env, "device", "set-status", "--app", "com.example.travel", "d/slash 2", "disabled", "--reason", "abuse")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "d/slash 2 app com.example.travel: active -> disabled")

	code, out, _ = runCLI(t, "", env, "device", "set-status", "d-4711", "active", "--reason", "found", "--json")
	require.Equal(t, exitOK, code)
	var e device.AuditEntry
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	require.Equal(t, device.Active, e.To)
	_, err = ctl.Check(ctx, phone)
	require.NoError(t, err)

	code, out, _ = runCLI(t, "", env, "device", "audit", "d-4711")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "stolen -> active")
	require.Contains(t, out, "owner reported theft")
	code, out, _ = runCLI(t, "", env, "device", "audit", "--limit", "1")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "more: --before")

	code, _, errOut = runCLI(t, "", env, "device", "unregister", "d/slash 2", "--reason", "cleanup")
	require.Equal(t, exitRefused, code, "an app is disabled on it")
	require.Contains(t, errOut, "409")
	code, out, errOut = runCLI(t, "", env, "device", "unregister", "d-4711", "--reason", "user left")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "d-4711: unregistered")
	code, _, _ = runCLI(t, "", env, "device", "status", "d-4711")
	require.Equal(t, exitRefused, code)
	code, _, _ = runCLI(t, "", env, "device", "unregister", "d-4711")
	require.Equal(t, exitUsage, code)

	// Usage errors and refusals.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"device", "set-status", "d-4711", "stolen"}, exitUsage, "--reason is required"},
		{[]string{"device", "set-status", "d-4711", "gone", "--reason", "x"}, exitUsage, "unknown status"},
		{[]string{"device", "set-status", "d-4711"}, exitUsage, "takes a device id and a status"},
		{[]string{"device", "status"}, exitUsage, "one device id"},
		{[]string{"device", "status", "nope"}, exitRefused, "404 not_found"},
		{[]string{"device", "set-status", "nope", "lost", "--reason", "x"}, exitRefused, "404"},
	} {
		code, _, errOut := runCLI(t, "", env, tc.args...)
		require.Equal(t, tc.code, code, tc.args)
		require.Contains(t, errOut, tc.msg, tc.args)
	}
}

func TestDeviceCLIPolicy(t *testing.T) {
	t.Parallel()
	ctl, _, env := deviceServer(t, false)
	ctx := context.Background()
	old := device.Client{DeviceID: "d-4711", AppID: "com.example.travel", Platform: "ios", AppVersion: "1.9.1", ClientID: "c-d-4711"}

	code, out, _ := runCLI(t, "", env, "device", "policy", "get", "com.example.travel", "ios")
	require.Equal(t, exitRefused, code, out)

	// Notify first...
	code, out, errOut := runCLI(t, "", env, "device", "policy", "set", "com.example.travel", "ios",
		"--min", "1.10.0", "--action", "notify", "--message", "Please update", "--translation", "fr=Mettez à jour",
		"--download-url", "https://apps.apple.com/app/id1", "--block", "1.8.0", "--reason", "CVE-2026-0001")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "notify below 1.10.0; block 1.8.0")
	n, err := ctl.Check(ctx, old)
	require.NoError(t, err)
	require.Equal(t, "Please update", n.Message)

	// ...then block: only the given flags change.
	code, out, errOut = runCLI(t, "", env, "device", "policy", "set", "com.example.travel", "ios", "--action", "block", "--unblock", "1.8.0", "--reason", "grace period over")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "block below 1.10.0")
	require.Contains(t, out, "message [fr]:")
	_, err = ctl.Check(ctx, old)
	var r *device.Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, device.CodeAppVersionBlocked, r.Code)
	require.Equal(t, "https://apps.apple.com/app/id1", r.DownloadURL)

	code, out, _ = runCLI(t, "", env, "device", "policy", "get", "com.example.travel", "ios")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "Mettez à jour")
	require.Contains(t, out, "by alice@ops")

	code, out, _ = runCLI(t, "", env, "device", "policy", "list")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "com.example.travel")

	code, _, errOut = runCLI(t, "", env, "device", "policy", "set", "com.example.travel", "ios", "--min", "1.x", "--reason", "r")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "malformed version")
	code, _, errOut = runCLI(t, "", env, "device", "policy", "set", "com.example.travel", "ios", "--translation", "fr", "--reason", "r")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "TAG=TEXT")

	code, out, _ = runCLI(t, "", env, "device", "policy", "delete", "com.example.travel", "ios", "--reason", "rollback")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "policy deleted")
	code, out, _ = runCLI(t, "", env, "device", "policy", "delete", "com.example.travel", "ios", "--reason", "again")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "no policy to delete")
	_, err = ctl.Check(ctx, old)
	require.NoError(t, err)

	code, out, _ = runCLI(t, "", env, "device", "audit", "--app", "com.example.travel")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "delete_policy")
	require.Contains(t, out, "grace period over")
}

func TestDeviceCLIAuth(t *testing.T) {
	t.Parallel()
	ctl, srv, env := deviceServer(t, false)
	viewer := map[string]string{deviceURLEnv: env[deviceURLEnv], deviceTokenEnv: cliViewerToken}
	code, _, errOut := runCLI(t, "", viewer, "device", "set-status", "d-4711", "stolen", "--reason", "x")
	require.Equal(t, exitRefused, code)
	require.Contains(t, errOut, "403")
	code, _, errOut = runCLI(t, "", nil, "device", "list", "--url", srv.URL+"/admin/device", "--token", "wrong-token-0123456789abcdef0123456789")
	require.Equal(t, exitRefused, code)
	require.Contains(t, errOut, "401")
	d, err := ctl.Device(context.Background(), "d-4711")
	require.NoError(t, err)
	require.Equal(t, device.Active, d.Status, "refused calls change nothing")

	// The flag wins over the variable.
	code, _, _ = runCLI(t, "", viewer, "device", "list", "--token", cliAdminToken)
	require.Equal(t, exitOK, code)

	code, _, errOut = runCLI(t, "", map[string]string{deviceTokenEnv: cliAdminToken}, "device", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, deviceURLEnv)
	code, _, errOut = runCLI(t, "", map[string]string{deviceURLEnv: srv.URL}, "device", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, deviceTokenEnv)
	code, _, errOut = runCLI(t, "", env, "device", "list", "--url", "http://device-admin.example.com/admin/device")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "refusing plain http")
	code, _, _ = runCLI(t, "", env, "device", "list", "--url", "ftp://x")
	require.Equal(t, exitUsage, code)
	code, _, errOut = runCLI(t, "", env, "device", "list", "--url", "http://127.0.0.1:1/admin/device")
	require.Equal(t, exitRefused, code, "connection refused")
	require.NotContains(t, errOut, cliAdminToken, "the token never reaches the output")
}

func TestDeviceCLITLS(t *testing.T) {
	t.Parallel()
	_, srv, env := deviceServer(t, true)
	code, _, errOut := runCLI(t, "", env, "device", "list")
	require.Equal(t, exitRefused, code, "an unknown CA is refused")
	require.Contains(t, errOut, "certificate")

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	code, out, errOut := runCLI(t, "", env, "device", "list", "--ca", caFile)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "d-4711")

	bad := filepath.Join(t.TempDir(), "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o600))
	code, _, _ = runCLI(t, "", env, "device", "list", "--ca", bad)
	require.Equal(t, exitUsage, code)
}

// A redirect is not followed: the token is not resent (net/http would
// resend it to the same host over plain http) and the change is not
// replayed elsewhere.
func TestDeviceCLIDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var leaked atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":"d-4711","status":"active"}`))
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	env := map[string]string{deviceURLEnv: redirector.URL + "/admin/device", deviceTokenEnv: cliAdminToken}
	for _, args := range [][]string{
		{"device", "status", "d-4711"},
		{"device", "set-status", "d-4711", "stolen", "--reason", "x"},
	} {
		code, _, errOut := runCLI(t, "", env, args...)
		require.Equal(t, exitRefused, code, "%v", args)
		require.Contains(t, errOut, "307")
		require.NotContains(t, errOut, cliAdminToken)
	}
	require.Zero(t, leaked.Load(), "the token never reached the redirect's target")
}

func TestDeviceCLIHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", nil, "device", "--help")
	require.Equal(t, exitOK, code)
	for _, sub := range []string{"list", "status", "set-status", "unregister", "audit", "policy"} {
		require.Contains(t, out, sub)
	}
	code, out, _ = runCLI(t, "", nil, "device", "policy", "set", "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, deviceTokenEnv)
	require.True(t, strings.Contains(out, "--reason") || strings.Contains(out, "-reason"))
	code, _, _ = runCLI(t, "", nil, "device", "frobnicate")
	require.Equal(t, exitUsage, code)
}
