package update

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

// evilServer answers checks with a chosen signed manifest and bundle.
func evilServer(t *testing.T, manifest, bundle []byte, from uint64) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /roots/{file}", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("GET /{app}/{platform}/check", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(CheckResponse{Manifest: manifest, Bundle: CheckBundle{URL: "bundles/x.zip", From: from, Size: int64(len(bundle))}})
	})
	mux.HandleFunc("GET /{app}/{platform}/bundles/x.zip", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bundle) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// zipOf builds a zip with the given entries (stored unless raw is used).
type zipEntry struct {
	name     string
	data     []byte
	declared int64 // if > 0, an uncompressed size to declare with raw deflate data
}

func zipOf(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		if e.declared > 0 {
			var raw bytes.Buffer
			fw, _ := flate.NewWriter(&raw, flate.BestCompression)
			_, _ = fw.Write(e.data)
			_ = fw.Close()
			w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(e.data),
				CompressedSize64: uint64(raw.Len()), UncompressedSize64: uint64(e.declared)})
			require.NoError(t, err)
			_, _ = w.Write(raw.Bytes())
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		require.NoError(t, err)
		_, _ = w.Write(e.data)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func manifestFor(t *testing.T, e *env, v uint64, files map[string]string) []byte {
	t.Helper()
	m := Manifest{AppID: "com.example.app", Platform: "ios", AppVersions: "*", BundleVersion: v, Created: t0, Expires: t0.Add(time.Hour)}
	for _, p := range sortedKeys(files) {
		m.Files = append(m.Files, File{Path: p, Size: int64(len(files[p])), SHA256: sha256.Sum256([]byte(files[p]))})
	}
	b, err := SignManifest(m, e.key)
	require.NoError(t, err)
	return b
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// installV1 installs version 1 (two files) through the real server.
func installV1(t *testing.T, e *env) (*Client, fstest.MapFS) {
	t.Helper()
	v1 := fstest.MapFS{"a.txt": {Data: []byte("one")}, "b/c.txt": {Data: []byte("two")}}
	e.publish(v1, 1, false)
	c := e.client()
	_, err := c.Update(context.Background())
	require.NoError(t, err)
	requireTree(t, c.Path(), v1)
	return c, v1
}

func TestClientRefusesBadBundles(t *testing.T) {
	t.Parallel()
	files := map[string]string{"a.txt": "new", "b/c.txt": "two"}
	bomb := strings.Repeat("\x00", 8<<20)
	tests := []struct {
		name   string
		bundle func(t *testing.T) []byte
		want   error
	}{
		{"tampered file", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "a.txt", data: []byte("NEW")}, zipEntry{name: "b/c.txt", data: []byte("two")})
		}, ErrIntegrity},
		{"dot-dot entry", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "../../x", data: []byte("new")}, zipEntry{name: "b/c.txt", data: []byte("two")})
		}, ErrUnsafePath},
		{"absolute entry", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "/tmp/x", data: []byte("new")}, zipEntry{name: "b/c.txt", data: []byte("two")})
		}, ErrUnsafePath},
		{"backslash entry", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: `..\x`, data: []byte("new")}, zipEntry{name: "b/c.txt", data: []byte("two")})
		}, ErrUnsafePath},
		{"zip bomb", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "a.txt", data: []byte(bomb), declared: 3}, zipEntry{name: "b/c.txt", data: []byte("two")})
		}, ErrTooLarge},
		{"extra file", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "a.txt", data: []byte("new")}, zipEntry{name: "b/c.txt", data: []byte("two")}, zipEntry{name: "evil.js", data: []byte("x")})
		}, ErrIntegrity},
		{"missing file", func(t *testing.T) []byte { return zipOf(t, zipEntry{name: "a.txt", data: []byte("new")}) }, ErrIntegrity},
		{"duplicate file", func(t *testing.T) []byte {
			return zipOf(t, zipEntry{name: "a.txt", data: []byte("new")}, zipEntry{name: "a.txt", data: []byte("new")})
		}, ErrIntegrity},
		{"not a zip", func(t *testing.T) []byte { return []byte("hello") }, ErrIntegrity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, v1 := installV1(t, e)
			evil := evilServer(t, manifestFor(t, e, 2, files), tc.bundle(t), 0)
			c := e.client(func(c *ClientConfig) { c.BaseURL = evil.URL })
			_, err := c.Update(context.Background())
			require.ErrorIs(t, err, tc.want)
			requireTree(t, c.Path(), v1) // old version untouched
			require.EqualValues(t, 1, c.InstalledVersion())
			requireNoWorkFiles(t, e.dir)
		})
	}
}

func requireNoWorkFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		require.False(t, strings.HasPrefix(e.Name(), ".stage-") || strings.HasPrefix(e.Name(), ".download-"), e.Name())
	}
}

func TestClientRefusesOlderManifest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	v1 := e.publish(genTree(20, 1), 1, false)
	e.publish(genTree(20, 2), 2, false)
	c := e.client()
	_, err := c.Update(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, c.InstalledVersion())

	// A validly signed, unexpired, older manifest offered by a hostile server.
	bundle := func() []byte {
		rc, _, err := e.store.OpenBundle(ctx, "com.example.app", "ios", 1, 0)
		require.NoError(t, err)
		defer rc.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		return b.Bytes()
	}()
	evil := evilServer(t, v1.Manifest, bundle, 0)
	c2 := e.client(func(c *ClientConfig) { c.BaseURL = evil.URL })
	_, err = c2.Update(ctx)
	require.ErrorIs(t, err, ErrRollback)
	requireTree(t, c2.Path(), genTree(20, 2))

	// Same version again is not newer either.
	evil2 := evilServer(t, e.mustRelease(2).Manifest, bundle, 0)
	_, err = e.client(func(c *ClientConfig) { c.BaseURL = evil2.URL }).Update(ctx)
	require.ErrorIs(t, err, ErrRollback)
}

func (e *env) mustRelease(v uint64) Release {
	rels, err := e.store.Releases(context.Background(), "com.example.app", "ios")
	require.NoError(e.t, err)
	for _, r := range rels {
		if r.Version == v {
			return r
		}
	}
	e.t.Fatalf("no release %d", v)
	return Release{}
}

func TestClientRefusesWrongTargetAndExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.publish(genTree(5, 1), 1, false)

	_, err := e.client(func(c *ClientConfig) { c.AppVersion = "2.0" }).Check(ctx)
	require.NoError(t, err, "the server offers nothing outside the range")

	evil := evilServer(t, e.mustRelease(1).Manifest, nil, 0)
	other := e.client(func(c *ClientConfig) { c.App = "com.example.other"; c.BaseURL = evil.URL })
	_, err = other.Check(ctx)
	require.ErrorIs(t, err, ErrWrongTarget)

	c := e.client(func(c *ClientConfig) { c.BaseURL = evil.URL; c.AppVersion = "2.0" })
	_, err = c.Check(ctx)
	require.ErrorIs(t, err, ErrWrongTarget)

	e.clock.Set(e.mustRelease(1).Expires)
	c = e.client(func(c *ClientConfig) { c.BaseURL = evil.URL })
	_, err = c.Check(ctx)
	require.ErrorIs(t, err, ErrExpired)
	e.clock.Set(e.mustRelease(1).Expires.Add(-time.Second))
	u, err := c.Check(ctx)
	require.NoError(t, err)
	require.NotNil(t, u)
}

func TestClientDeltaAgainstModifiedInstall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.publish(genTree(100, 1), 1, false)
	c := e.client()
	_, err := c.Update(ctx)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.Path(), "dir1", "sub1", "file001.js"), []byte("tampered"), 0o644))
	e.publish(genTree(100, 3), 2, false)
	u, err := c.Check(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, u.From)
	require.ErrorIs(t, c.Apply(ctx, u), ErrIntegrity)
}

func TestClientDiskSpaceAndInProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.publish(genTree(10, 1), 1, false)
	c := e.client()
	c.freeSpace = func(string) (uint64, error) { return 100, nil }
	_, err := c.Update(ctx)
	require.ErrorIs(t, err, ErrDiskSpace)
	require.EqualValues(t, 0, c.InstalledVersion())

	c.freeSpace = freeSpace
	unlock, err := lockFile(filepath.Join(e.dir, lockName), false)
	require.NoError(t, err)
	_, err = c.Update(ctx)
	require.ErrorIs(t, err, ErrInProgress)
	require.ErrorIs(t, c.Rollback(ctx), ErrInProgress)
	unlock()
	_, err = c.Update(ctx)
	require.NoError(t, err)

	require.ErrorIs(t, c.Rollback(ctx), ErrNotFound, "nothing to roll back to")
}

func TestClientMaxSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(genTree(50, 1), 1, false)
	_, err := e.client(func(c *ClientConfig) { c.MaxSize = 100 }).Update(context.Background())
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestClientNetworkErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	_, err := e.client(func(c *ClientConfig) { c.BaseURL = broken.URL }).Check(context.Background())
	var ne *NetworkError
	require.ErrorAs(t, err, &ne)
	require.ErrorIs(t, err, ErrNetwork)
	require.Equal(t, http.StatusInternalServerError, ne.StatusCode)

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err = e.client(func(c *ClientConfig) { c.BaseURL = closed.URL }).Check(context.Background())
	require.ErrorIs(t, err, ErrNetwork)
}

func TestClientFollowsRootRotation(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	e := newEnv(t)
	// Version 2 moves every role to k[1]; both the old key and k[1] sign it.
	v2 := mustSign(t, Root{Version: 2, Expires: t0.Add(1000 * time.Hour), RootKeys: pubs(t, k[1]), RootThreshold: 1,
		ManifestKeys: pubs(t, k[1]), ManifestThreshold: 1}, e.key, k[1])
	srv, err := NewServer(ServerConfig{Store: e.store, Roots: [][]byte{e.root, v2}, Now: e.clock.Now, CacheTTL: -1})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	pub, err := NewPublisher(PublisherConfig{Store: e.store, Keys: []crypto.Signer{k[1]}, Root: v2, Now: e.clock.Now})
	require.NoError(t, err)
	_, err = pub.Publish(ctx, genTree(5, 1), ReleaseSpec{App: "com.example.app", Platform: "ios", AppVersions: "*",
		Version: 1, Expires: t0.Add(time.Hour)})
	require.NoError(t, err)

	c := e.client(func(c *ClientConfig) { c.BaseURL = hs.URL })
	m, err := c.Update(ctx)
	require.NoError(t, err, "the manifest signed by the new key verifies after following the rotation")
	require.EqualValues(t, 1, m.BundleVersion)
	stored, err := os.ReadFile(filepath.Join(e.dir, rootFile))
	require.NoError(t, err)
	require.Equal(t, v2, stored, "the newest root is kept")

	// A new client on the same directory starts from the stored root.
	c2 := e.client(func(c *ClientConfig) { c.BaseURL = evilServer(t, e.mustRelease(1).Manifest, nil, 0).URL })
	require.EqualValues(t, 2, c2.root.Version())

	// An old-key-only manifest no longer verifies with the rotated root.
	signedOld := manifestFor(t, e, 2, map[string]string{"x": "y"})
	_, err = c2.Check(ctx)
	require.ErrorIs(t, err, ErrRollback) // version 1 offered again
	c3 := e.client(func(c *ClientConfig) { c.BaseURL = evilServer(t, signedOld, nil, 0).URL })
	_, err = c3.Check(ctx)
	require.ErrorIs(t, err, ErrSignature)

	// A rotation signed below the old root's threshold is refused.
	bad := mustSign(t, Root{Version: 3, Expires: t0.Add(1000 * time.Hour), RootKeys: pubs(t, k[2]), RootThreshold: 1,
		ManifestKeys: pubs(t, k[2]), ManifestThreshold: 1}, k[2])
	mux := http.NewServeMux()
	mux.HandleFunc("GET /roots/3.json", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bad) })
	hs3 := httptest.NewServer(mux)
	defer hs3.Close()
	_, err = e.client(func(c *ClientConfig) { c.BaseURL = hs3.URL }).Check(ctx)
	require.ErrorIs(t, err, ErrSignature)
}

func TestClientBaseURLMustBeHTTPSUnlessLoopback(t *testing.T) {
	t.Parallel()
	root := simpleRoot(t, testKeys()[0])
	for url, ok := range map[string]bool{
		"https://updates.example.com/update": true,
		"http://127.0.0.1:8080/update":       true,
		"http://127.1.2.3/update":            true,
		"http://[::1]:8080/update":           true,
		"http://localhost:8080/update":       true,
		"http://LOCALHOST/update":            true,
		"http://127.example.com/update":      false, // a name, not an address
		"http://127.0.0.1.nip.io/update":     false,
		"http://localhost.example.com/":      false,
		"http://[::ffff:10.0.0.1]/update":    false,
		"http://10.0.0.1/update":             false,
		"ftp://127.0.0.1/update":             false,
	} {
		_, err := NewClient(ClientConfig{BaseURL: url, App: "com.example.app", Platform: "ios", AppVersion: "1.0",
			Root: root, Dir: t.TempDir()})
		if ok {
			require.NoError(t, err, url)
		} else {
			require.Error(t, err, url)
		}
	}
}

// TestApplyRechecksExpiry: a manifest that expires between Check and
// Apply is not installed.
func TestApplyRechecksExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	rel := e.publish(genTree(5, 1), 1, false)
	c := e.client()
	u, err := c.Check(ctx)
	require.NoError(t, err)
	require.NotNil(t, u)
	e.clock.Set(rel.Expires)
	require.ErrorIs(t, c.Apply(ctx, u), ErrExpired)
	require.EqualValues(t, 0, c.InstalledVersion())
	_, err = c.Installed()
	require.ErrorIs(t, err, ErrNotFound)
	requireNoWorkFiles(t, e.dir)

	e.clock.Set(rel.Expires.Add(-time.Second))
	require.NoError(t, c.Apply(ctx, u), "one second before expiry it installs")
	require.ErrorIs(t, c.Apply(ctx, u), ErrRollback, "installed already")
	fresh := e.client(func(c *ClientConfig) { c.Dir = t.TempDir() })
	require.Error(t, fresh.Apply(ctx, &Update{Manifest: u.Manifest}), "an Update not made by Check is refused, not a panic")
}
