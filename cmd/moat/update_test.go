package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/update"
)

func TestUpdateCLI(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	p := func(name string) string { return filepath.Join(tmp, name) }
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", nil, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut)
		return out
	}
	code := func(args ...string) int {
		t.Helper()
		c, _, _ := runCLI(t, "", nil, args...)
		return c
	}

	out := ok("update", "keygen", "--out", p("root1.jwk"))
	require.Contains(t, out, "EdDSA key")
	ok("update", "keygen", "--out", p("root2.jwk"), "--alg", "ES256")
	ok("update", "keygen", "--out", p("signer.jwk"))
	ok("update", "keygen", "--out", p("other.jwk"))
	st, err := os.Stat(p("root1.jwk"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Equal(t, exitUsage, code("update", "keygen", "--out", p("root1.jwk")), "never overwrites a key")
	require.Equal(t, exitUsage, code("update", "keygen", "--out", p("x.jwk"), "--alg", "RS256"))

	ok("update", "root", "init", "--key", p("root1.jwk"), "--key", p("root2.jwk"), "--threshold", "2",
		"--signer", p("signer.jwk"), "--out", p("root.json"))
	require.Equal(t, exitUsage, code("update", "root", "init", "--key", p("root1.jwk"), "--threshold", "2", "--out", p("bad.json")))
	require.Equal(t, exitUsage, code("update", "root", "init", "--out", p("bad.json")))

	// Publish two versions into a repository.
	web := p("web")
	write := func(name, body string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(web, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(web, name), []byte(body), 0o644))
	}
	write("index.html", "<h1>v1</h1>")
	write("js/app.js", "console.log(1)")
	repo := p("repo")
	pub := func(v string, extra ...string) (int, string, string) {
		return runCLI(t, "", nil, append([]string{"update", "publish", "--dir", web, "--app", "com.example.app", "--platform", "ios",
			"--app-versions", ">=1.0 <2", "--version", v, "--key", p("signer.jwk"), "--out", repo, "--root", p("root.json")}, extra...)...)
	}
	c, out, errOut := pub("1")
	require.Equal(t, exitOK, c, errOut)
	require.Contains(t, out, "manifest.json")
	manifest1 := filepath.Join(repo, "com.example.app", "ios", "1", "manifest.json")
	require.FileExists(t, manifest1)
	write("index.html", "<h1>v2</h1>")
	c, out, errOut = pub("2", "--mandatory")
	require.Equal(t, exitOK, c, errOut)
	require.Contains(t, out, "from-1.zip")
	c, _, _ = pub("2")
	require.Equal(t, exitRefused, c, "the version exists")
	c, _, _ = runCLI(t, "", nil, "update", "publish", "--dir", web, "--app", "com.example.app", "--platform", "ios",
		"--app-versions", "*", "--version", "3", "--key", p("other.jwk"), "--out", repo, "--root", p("root.json"))
	require.Equal(t, exitRefused, c, "a key the root does not list")
	require.Equal(t, exitUsage, code("update", "publish", "--dir", web))

	out = ok("update", "verify", "--root", p("root.json"), "--manifest", manifest1)
	require.Contains(t, out, "valid: com.example.app/ios bundle version 1")
	ok("update", "root", "init", "--key", p("other.jwk"), "--out", p("other-root.json"))
	require.Equal(t, exitRefused, code("update", "verify", "--root", p("other-root.json"), "--manifest", manifest1))
	require.NoError(t, os.WriteFile(p("garbage.json"), []byte("{}"), 0o644))
	require.Equal(t, exitRefused, code("update", "verify", "--root", p("root.json"), "--manifest", p("garbage.json")))
	require.Equal(t, exitUsage, code("update", "verify", "--root", p("root.json"), "--manifest", p("missing.json")))

	// Rotation: the old threshold (both keys) and the new key sign.
	ok("update", "keygen", "--out", p("root3.jwk"))
	ok("update", "root", "rotate", "--root", p("root.json"), "--key", p("root1.jwk"), "--key", p("root2.jwk"),
		"--new-key", p("root3.jwk"), "--out", p("root-v2.json"))
	require.Equal(t, exitRefused, code("update", "root", "rotate", "--root", p("root.json"), "--key", p("root1.jwk"),
		"--new-key", p("root3.jwk"), "--out", p("root-bad.json")), "below the old threshold")
	ok("update", "verify", "--root", p("root-v2.json"), "--manifest", manifest1)

	// Serve the repository and apply from it.
	root1, _ := os.ReadFile(p("root.json"))
	root2, _ := os.ReadFile(p("root-v2.json"))
	store, err := update.NewFileStore(repo)
	require.NoError(t, err)
	srv, err := update.NewServer(update.ServerConfig{Store: store, Roots: [][]byte{root1, root2}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/update/", http.StripPrefix("/update", srv))
	hs := httptest.NewServer(mux)
	defer hs.Close()

	into := p("app")
	out = ok("update", "apply", "--root", p("root.json"), "--server", hs.URL+"/update/com.example.app/ios", "--into", into)
	require.Contains(t, out, "installed bundle version 2 (full bundle")
	b, err := os.ReadFile(filepath.Join(into, "current", "files", "index.html"))
	require.NoError(t, err)
	require.Equal(t, "<h1>v2</h1>", string(b))
	out = ok("update", "apply", "--root", p("root.json"), "--server", hs.URL+"/update", "--app", "com.example.app",
		"--platform", "ios", "--app-version", "1.2", "--into", into)
	require.Contains(t, out, "up to date (bundle version 2)")

	require.Equal(t, exitUsage, code("update", "apply", "--root", p("root.json"), "--server", hs.URL, "--into", into))
	require.Equal(t, exitRefused, code("update", "apply", "--root", p("other-root.json"), "--server", hs.URL+"/update/com.example.app/ios",
		"--into", p("app2")), "roots that do not chain")

	// On a terminal, a progress bar.
	var tout, terr bytes.Buffer
	std := stdio{in: strings.NewReader(""), out: &tout, err: &terr, getenv: func(string) string { return "" }, isTerminal: true}
	c = run(context.Background(), std, []string{"update", "apply", "--root", p("root.json"), "--server", hs.URL + "/update/com.example.app/ios", "--into", p("app3")})
	require.Equal(t, exitOK, c, terr.String())
	require.Contains(t, tout.String(), "100%")
	require.Contains(t, tout.String(), "\r")
}

func TestUpdateCLIUsage(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", nil, "update", "--help")
	require.Equal(t, exitOK, code)
	for _, s := range []string{"keygen", "root", "publish", "verify", "apply"} {
		require.Contains(t, out, s)
	}
	code, out, _ = runCLI(t, "", nil, "update", "root", "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "rotate")
	code, _, _ = runCLI(t, "", nil, "update", "bogus")
	require.Equal(t, exitUsage, code)
	code, _, _ = runCLI(t, "", nil, "update", "root")
	require.Equal(t, exitUsage, code)
	code, out, _ = runCLI(t, "", nil, "update", "publish", "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "--app-versions")
}
