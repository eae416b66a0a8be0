package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
)

func TestTokenInspect(t *testing.T) {
	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	ks, err := auth.NewKeySet(signer, 1)
	require.NoError(t, err)
	jwks, err := json.Marshal(ks.JWKS())
	require.NoError(t, err)
	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) }))
	defer srv.Close()

	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", ks.CurrentKeyID()))
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tok, err := jwt.Signed(js).Claims(map[string]any{
		"iss": "https://as.example", "aud": "https://api.example", "sub": "alice", "client_id": "c1",
		"jti": "j1", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "scope": "a b",
	}).Serialize()
	require.NoError(t, err)

	base := []string{"token", "inspect", "--iss", "https://as.example", "--aud", "https://api.example", "--at", "2026-12-01T10:05:00Z"}
	code, out, errOut := runCLI(t, "", nil, append(base, "--jwks", jwksFile, tok)...)
	require.Equal(t, exitOK, code, errOut)
	var claims map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &claims))
	require.Equal(t, "alice", claims["sub"])

	code, _, _ = runCLI(t, tok, nil, append(base, "--jwks", srv.URL, "-")...)
	require.Equal(t, exitOK, code, "JWKS from a URL, token from stdin")

	code, _, errOut = runCLI(t, "", nil, "token", "inspect", "--iss", "https://as.example", "--aud", "https://api.example",
		"--at", "2026-12-01T11:00:00Z", "--jwks", jwksFile, tok)
	require.Equal(t, exitRefused, code)
	require.Contains(t, errOut, "expired")

	code, _, _ = runCLI(t, "", nil, append(base, "--jwks", jwksFile, "--alg", "RS256", tok)...)
	require.Equal(t, exitUsage, code)
	code, _, _ = runCLI(t, "", nil, "token", "inspect", "--jwks", jwksFile, tok)
	require.Equal(t, exitUsage, code, "--iss and --aud are required")
	code, _, _ = runCLI(t, "", nil, append(base, "--jwks", jwksFile, tok[:len(tok)-3]+"AAA")...)
	require.Equal(t, exitRefused, code)
	code, _, _ = runCLI(t, "", nil, append(base, "--jwks", filepath.Join(dir, "missing.json"), tok)...)
	require.Equal(t, exitUsage, code)
	code, _, errOut = runCLI(t, "", nil, append(base, "--jwks", "http://jwks.example/keys.json", tok)...)
	require.Equal(t, exitUsage, code, "keys fetched in the clear from another host are refused, unfetched")
	require.Contains(t, errOut, "https")
	code, _, _ = runCLI(t, "", nil, "token", "frob")
	require.Equal(t, exitUsage, code)
}
