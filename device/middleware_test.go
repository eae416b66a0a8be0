package device_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
)

type clientKey struct{}

// extract stands in for the host's: the authentication stage put the
// client in the context.
func extract(r *http.Request) (device.Client, bool) {
	c, ok := r.Context().Value(clientKey{}).(device.Client)
	return c, ok
}

func serve(t *testing.T, h http.Handler, c *device.Client, lang string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/reservations/1", nil)
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	if c != nil {
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, *c))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	if w.Header().Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	}
	return w, body
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var seenNotice *device.Notice
	h := f.ctl.Middleware(extract)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenNotice, _ = device.NoticeFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	}))
	c := f.client(t, "dev", "1.9.0")

	w, _ := serve(t, h, &c, "")
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, w.Header().Get(device.NoticeHeader))
	require.Nil(t, seenNotice)

	// Notify: the call succeeds and carries the notice once.
	f.setPolicy(t, device.Policy{MinVersion: "1.10.0", Action: device.Notify, Message: "Please update",
		Translations: map[string]string{"fr": "Mettez à jour"}, DownloadURL: "https://apps.apple.com/app/id1"})
	w, _ = serve(t, h, &c, "fr-FR,fr;q=0.9")
	require.Equal(t, http.StatusOK, w.Code)
	n, err := device.ParseNotice(w.Header().Get(device.NoticeHeader))
	require.NoError(t, err)
	require.Equal(t, device.Notice{Message: "Mettez à jour", DownloadURL: "https://apps.apple.com/app/id1", MinVersion: "1.10.0"}, n)
	require.Equal(t, &n, seenNotice, "later stages find the notice in the context")
	w, _ = serve(t, h, &c, "fr")
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, w.Header().Get(device.NoticeHeader), "once per client")

	// Block.
	f.setPolicy(t, device.Policy{MinVersion: "1.10.0", Message: "Update required",
		Translations: map[string]string{"fr": "Mise à jour obligatoire"}, DownloadURL: "https://apps.apple.com/app/id1"})
	w, body := serve(t, h, &c, "fr")
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Equal(t, map[string]any{
		"error": "app_version_blocked", "error_description": "app version is blocked by the version policy",
		"message": "Mise à jour obligatoire", "download_url": "https://apps.apple.com/app/id1",
	}, body)
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	// Device status.
	c.AppVersion = "1.10.0"
	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Lost, Actor: "op", Reason: "r"})
	require.NoError(t, err)
	w, body = serve(t, h, &c, "")
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Equal(t, "device_blocked", body["error"])
	require.Equal(t, device.DefaultDeviceMessage, body["message"])
	require.NotContains(t, body, "download_url")

	// Store down: 503, never a pass.
	f.store.failReads.Store(true)
	f.clock.Advance(device.DefaultCacheTTL)
	w, body = serve(t, h, &c, "")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.NotContains(t, body["error_description"], "store down", "internal errors stay in the log")

	// No client in the request: fail closed.
	w, body = serve(t, h, nil, "")
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Equal(t, "device_blocked", body["error"])
}

func TestMiddlewareNeedsExtract(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.Panics(t, func() { f.ctl.Middleware(nil) })
}
