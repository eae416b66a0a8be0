package update

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, url string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServerCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const check = "/com.example.app/ios/check"
	require.Equal(t, http.StatusNoContent, get(t, e.server, check+"?bundle_version=0").Code, "nothing published")

	e.publish(genTree(200, 1), 1, false)
	e.publish(genTree(200, 2), 2, true)
	e.publish(genTree(200, 3), 3, false)

	decode := func(w *httptest.ResponseRecorder) CheckResponse {
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var cr CheckResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &cr))
		return cr
	}
	cr := decode(get(t, e.server, check+"?bundle_version=0&app_version=1.5"))
	require.EqualValues(t, 3, cr.BundleVersion)
	require.Equal(t, "bundles/3/full.zip", cr.Bundle.URL)
	require.EqualValues(t, 0, cr.Bundle.From)
	full, _ := e.mustRelease(3).Bundle(0)
	require.Equal(t, full.Size, cr.Bundle.Size)

	cr = decode(get(t, e.server, check+"?bundle_version=1&app_version=1.5"))
	require.Equal(t, "bundles/3/from-1.zip", cr.Bundle.URL, "a delta from the installed version")
	require.Less(t, cr.Bundle.Size, full.Size)
	cr = decode(get(t, e.server, check+"?bundle_version=2"))
	require.Equal(t, "bundles/3/from-2.zip", cr.Bundle.URL)

	require.Equal(t, http.StatusNoContent, get(t, e.server, check+"?bundle_version=3").Code)
	require.Equal(t, http.StatusNoContent, get(t, e.server, check+"?bundle_version=7").Code)
	require.Equal(t, http.StatusNoContent, get(t, e.server, check+"?bundle_version=0&app_version=2.0").Code, "outside the range")
	require.Equal(t, http.StatusNoContent, get(t, e.server, "/com.example.other/ios/check").Code)

	for _, bad := range []string{"?bundle_version=-1", "?bundle_version=x", "?bundle_version=01", "?app_version=1.x"} {
		require.Equal(t, http.StatusBadRequest, get(t, e.server, check+bad).Code, bad)
	}

	// Expired releases are not offered: the newest unexpired one is.
	e.clock.Set(e.mustRelease(3).Expires)
	require.Equal(t, http.StatusNoContent, get(t, e.server, check+"?bundle_version=0").Code)
}

func TestServerUnknownInstalledVersionGetsFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(genTree(50, 1), 1, false)
	e.publish(genTree(50, 5), 5, false)
	w := get(t, e.server, "/com.example.app/ios/check?bundle_version=3")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `"url":"bundles/5/full.zip"`)
}

func TestServerBundleDownloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(genTree(50, 1), 1, false)
	e.publish(genTree(50, 2), 2, false)
	info, _ := e.mustRelease(2).Bundle(1)
	const url = "/com.example.app/ios/bundles/2/from-1.zip"

	w := get(t, e.server, url)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, info.ETag, w.Header().Get("ETag"))
	require.Equal(t, "application/zip", w.Header().Get("Content-Type"))
	body := w.Body.Bytes()
	require.EqualValues(t, info.Size, len(body))

	w = get(t, e.server, url, "If-None-Match", info.ETag)
	require.Equal(t, http.StatusNotModified, w.Code)

	w = get(t, e.server, url, "Range", "bytes=10-19")
	require.Equal(t, http.StatusPartialContent, w.Code)
	require.Equal(t, body[10:20], w.Body.Bytes())

	w = get(t, e.server, url, "Range", "bytes=10-", "If-Range", info.ETag)
	require.Equal(t, http.StatusPartialContent, w.Code)
	require.Equal(t, body[10:], w.Body.Bytes())
	w = get(t, e.server, url, "Range", "bytes=10-", "If-Range", `"stale"`)
	require.Equal(t, http.StatusOK, w.Code, "a changed ETag gets the whole bundle")

	for _, u := range []string{"/com.example.app/ios/bundles/2/from-3.zip", "/com.example.app/ios/bundles/2/from-01.zip",
		"/com.example.app/ios/bundles/9/full.zip", "/com.example.app/ios/bundles/2/x.zip", "/com.example.app/ios/bundles/2/from-0.zip"} {
		require.Equal(t, http.StatusNotFound, get(t, e.server, u).Code, u)
	}

	fi, _ := e.mustRelease(2).Bundle(0)
	require.NotEqual(t, fi.ETag, info.ETag)
}

func TestServerRoots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := get(t, e.server, "/roots/1.json")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, e.root, w.Body.Bytes())
	for _, u := range []string{"/roots/2.json", "/roots/0.json", "/roots/01.json", "/roots/1"} {
		require.Equal(t, http.StatusNotFound, get(t, e.server, u).Code, u)
	}
	_, err := NewServer(ServerConfig{Store: e.store, Roots: [][]byte{e.root, e.root}})
	require.ErrorIs(t, err, ErrRollback, "roots must follow each other")
	_, err = NewServer(ServerConfig{Store: e.store})
	require.Error(t, err)
	_, err = NewServer(ServerConfig{Roots: [][]byte{e.root}})
	require.Error(t, err)
}

func TestUpdateGate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	state := func(v uint64) ClientState {
		return ClientState{App: "com.example.app", Platform: "ios", AppVersion: "1.2", BundleVersion: v}
	}
	require.NoError(t, e.server.Required(ctx, state(0)), "nothing published")
	e.publish(genTree(5, 1), 1, false)
	require.NoError(t, e.server.Required(ctx, state(0)), "optional update")
	e.publish(genTree(5, 2), 2, true)
	e.publish(genTree(5, 3), 3, false)

	err := e.server.Required(ctx, state(1))
	var re *RequiredError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, ErrUpdateRequired)
	require.Equal(t, RequiredError{Installed: 1, Required: 2, Latest: 3}, *re)
	require.NoError(t, e.server.Required(ctx, state(2)))
	require.NoError(t, e.server.Required(ctx, state(3)))
	s := state(1)
	s.AppVersion = "2.0"
	require.NoError(t, e.server.Required(ctx, s), "the mandatory release is not for this native version")

	protected := e.server.RequireUpdated(func(r *http.Request) (ClientState, error) {
		v, err := BundleVersionFrom(r)
		st := state(v)
		return st, err
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))

	w := get(t, protected, "/api")
	require.Equal(t, http.StatusForbidden, w.Code, "no header: nothing installed")
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "update_required", body["error"])
	require.EqualValues(t, 2, body["required_bundle_version"])
	require.EqualValues(t, 3, body["latest_bundle_version"])

	require.Equal(t, http.StatusForbidden, get(t, protected, "/api", HeaderBundleVersion, "1").Code)
	require.Equal(t, http.StatusOK, get(t, protected, "/api", HeaderBundleVersion, "2").Code)
	require.Equal(t, http.StatusBadRequest, get(t, protected, "/api", HeaderBundleVersion, "two").Code)

	// An expired mandatory manifest cannot be installed, so it stops gating.
	e.clock.Set(e.mustRelease(2).Expires)
	require.NoError(t, e.server.Required(ctx, state(1)))

	// Store errors fail closed.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	broken, err := NewServer(ServerConfig{Store: failingStore{e.store}, Roots: [][]byte{e.root}, CacheTTL: -1, Logger: quiet})
	require.NoError(t, err)
	require.ErrorIs(t, broken.Required(ctx, state(3)), errStoreDown)
	gate := broken.RequireUpdated(func(*http.Request) (ClientState, error) { return state(3), nil })(http.NotFoundHandler())
	require.Equal(t, http.StatusServiceUnavailable, get(t, gate, "/api").Code)
	require.Equal(t, http.StatusServiceUnavailable, get(t, broken, "/com.example.app/ios/check").Code)
}

var errStoreDown = errors.New("store down")

type failingStore struct{ Store }

func (failingStore) Releases(context.Context, string, string) ([]Release, error) {
	return nil, errStoreDown
}

func TestServerCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, err := NewServer(ServerConfig{Store: e.store, Roots: [][]byte{e.root}, Now: e.clock.Now})
	require.NoError(t, err)
	const check = "/com.example.app/ios/check"
	require.Equal(t, http.StatusNoContent, get(t, srv, check).Code)
	e.publish(genTree(5, 1), 1, false)
	require.Equal(t, http.StatusNoContent, get(t, srv, check).Code, "cached for 5s")
	e.clock.Advance(5 * time.Second)
	require.Equal(t, http.StatusOK, get(t, srv, check).Code)
	require.True(t, strings.HasPrefix(get(t, srv, check).Header().Get("Content-Type"), "application/json"))
}

func TestServerObserve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var events []Event
	var mu sync.Mutex
	srv, err := NewServer(ServerConfig{Store: e.store, Roots: [][]byte{e.root}, Now: e.clock.Now, CacheTTL: -1,
		Observe: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	require.NoError(t, err)
	e.publish(genTree(5, 1), 1, true)
	get(t, srv, "/com.example.app/ios/check?app_version=1.1")
	get(t, srv, "/com.example.app/ios/bundles/1/full.zip")
	_ = srv.Required(context.Background(), ClientState{App: "com.example.app", Platform: "ios", AppVersion: "1.1"})
	require.Equal(t, []Event{
		{Kind: "check", App: "com.example.app", Platform: "ios", AppVersion: "1.1", Offered: 1, Mandatory: true},
		{Kind: "download", App: "com.example.app", Platform: "ios", Offered: 1},
		{Kind: "update_required", App: "com.example.app", Platform: "ios", AppVersion: "1.1", Offered: 1, Mandatory: true},
	}, events)
}
