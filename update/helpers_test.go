package update

import (
	"context"
	"crypto"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv/kvtest"
)

// t0 is the fixed time tests start at.
var t0 = kvtest.NewClock().Now()

// fakeClock is kv's test clock, which also moves to a given time.
type fakeClock struct{ *kvtest.Clock }

func newClock() fakeClock { return fakeClock{kvtest.NewClock()} }

func (c fakeClock) Set(t time.Time) { c.Advance(t.Sub(c.Now())) }

// keys are generated once per test binary: ES256 and EdDSA keys mixed.
var testKeys = sync.OnceValue(func() []crypto.Signer {
	var ks []crypto.Signer
	for i := range 6 {
		alg := EdDSA
		if i%2 == 1 {
			alg = ES256
		}
		k, err := GenerateKey(alg)
		if err != nil {
			panic(err)
		}
		ks = append(ks, k)
	}
	return ks
})

func pubs(t testing.TB, ks ...crypto.Signer) []jose.JSONWebKey {
	t.Helper()
	var out []jose.JSONWebKey
	for _, k := range ks {
		p, err := PublicKeyOf(k)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// simpleRoot is a version-1 root where key signs both roots and manifests.
func simpleRoot(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	r, err := SignRoot(Root{Version: 1, Expires: t0.Add(365 * 24 * time.Hour), RootKeys: pubs(t, key), RootThreshold: 1,
		ManifestKeys: pubs(t, key), ManifestThreshold: 1}, key)
	require.NoError(t, err)
	return r
}

// genTree makes a tree of n files for version v: most files stay the same
// across versions, every 7th changes with v, every 11th exists only in
// odd versions.
func genTree(n int, v uint64) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := range n {
		if i%11 == 5 && v%2 == 0 {
			continue
		}
		name := fmt.Sprintf("dir%d/sub%d/file%03d.js", i%5, i%3, i)
		body := fmt.Sprintf("// file %d\nconsole.log(%d);\n", i, i)
		if i%7 == 0 {
			body += fmt.Sprintf("// version %d\n", v)
		}
		fsys[name] = &fstest.MapFile{Data: []byte(body), Mode: 0o644}
	}
	fsys["index.html"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("<h1>version %d</h1>", v))}
	return fsys
}

// env is a publisher, server and client wired together over httptest.
type env struct {
	t      testing.TB
	clock  fakeClock
	key    crypto.Signer
	root   []byte
	store  Store
	pub    *Publisher
	server *Server
	http   *httptest.Server
	dir    string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), key: testKeys()[0], store: NewMemoryStore(), dir: fastTempDir(t)}
	e.root = simpleRoot(t, e.key)
	var err error
	e.pub, err = NewPublisher(PublisherConfig{Store: e.store, Keys: []crypto.Signer{e.key}, Root: e.root, Now: e.clock.Now})
	require.NoError(t, err)
	e.server, err = NewServer(ServerConfig{Store: e.store, Roots: [][]byte{e.root}, Now: e.clock.Now, CacheTTL: -1})
	require.NoError(t, err)
	e.http = httptest.NewServer(e.server)
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) publish(src fs.FS, v uint64, mandatory bool) *Release {
	e.t.Helper()
	rel, err := e.pub.Publish(context.Background(), src, ReleaseSpec{App: "com.example.app", Platform: "ios", AppVersions: ">=1.0 <2",
		Version: v, Mandatory: mandatory, Expires: e.clock.Now().Add(30 * 24 * time.Hour)})
	require.NoError(e.t, err)
	return rel
}

func (e *env) client(cfg ...func(*ClientConfig)) *Client {
	e.t.Helper()
	c := ClientConfig{BaseURL: e.http.URL, App: "com.example.app", Platform: "ios", AppVersion: "1.4.2",
		Root: e.root, Dir: e.dir, Now: e.clock.Now}
	for _, f := range cfg {
		f(&c)
	}
	cl, err := NewClient(c)
	require.NoError(e.t, err)
	return cl
}

// requireTree checks that dir holds exactly the files of fsys.
func requireTree(t testing.TB, dir string, fsys fstest.MapFS) {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	require.NoError(t, err)
	want := map[string]string{}
	for k, f := range fsys {
		want[k] = string(f.Data)
	}
	require.Equal(t, want, got)
}

// fastTempDir returns a temporary directory on a memory file system when
// there is one (/dev/shm), else t.TempDir(). Installing syncs to stable
// storage, which is slow on a shared disk and proves nothing in a test
// (TestRoundTripFullAndDelta still installs on disk).
func fastTempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "moat-update-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
