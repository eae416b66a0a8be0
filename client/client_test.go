package client_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/client"
)

func TestParseWWWAuthenticateRFC9470(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/rfc9470_www_authenticate.txt")
	require.NoError(t, err)
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "WWW-Authenticate:"))
	chs := client.ParseWWWAuthenticate([]string{v})
	require.Len(t, chs, 1)
	require.Equal(t, "Bearer", chs[0].Scheme)
	require.Equal(t, "insufficient_user_authentication", chs[0].Params["error"])
	require.Equal(t, "myACR", chs[0].Params["acr_values"])
	require.NotContains(t, chs[0].Params, "max_age")
}

func TestParseWWWAuthenticate(t *testing.T) {
	t.Parallel()
	chs := client.ParseWWWAuthenticate([]string{
		`DPoP realm="moat", error="use_dpop_nonce", error_description="a \"quoted\" word", algs="ES256 EdDSA"`,
		`Bearer realm="moat", error="insufficient_user_authentication", acr_values="a b", max_age=300`,
		`Basic realm="x", Bearer error=invalid_token`,
		``, `,,,`, `=x`, `"unterminated`, `Bearer error="x`,
	})
	require.GreaterOrEqual(t, len(chs), 4)
	require.Equal(t, "DPoP", chs[0].Scheme)
	require.Equal(t, `a "quoted" word`, chs[0].Params["error_description"])
	require.Equal(t, "ES256 EdDSA", chs[0].Params["algs"])
	require.Equal(t, "300", chs[1].Params["max_age"])
	require.Equal(t, "a b", chs[1].Params["acr_values"])
	require.Equal(t, "Basic", chs[2].Scheme)
	require.Equal(t, "Bearer", chs[3].Scheme)
	require.Equal(t, "invalid_token", chs[3].Params["error"])
}

func FuzzParseWWWAuthenticate(f *testing.F) {
	f.Add(`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`)
	f.Add(`DPoP algs="ES256", error="use_dpop_nonce"`)
	f.Add(`"\`)
	f.Fuzz(func(t *testing.T, s string) {
		_ = client.ParseWWWAuthenticate([]string{s})
	})
}

func TestOAuthErrorMatchesSentinels(t *testing.T) {
	t.Parallel()
	e := &client.OAuthError{Status: 403, Code: "device_blocked", Body: map[string]any{"message": "Reported stolen", "download_url": "https://x"}}
	require.ErrorIs(t, e, client.ErrDeviceBlocked)
	require.NotErrorIs(t, e, client.ErrAppVersionBlocked)
	require.Equal(t, "Reported stolen", e.Message())
	require.Equal(t, "https://x", e.DownloadURL())
	var target *client.OAuthError
	require.True(t, errors.As(error(e), &target))
	v := &client.OAuthError{Status: 403, Code: "app_version_blocked"}
	require.ErrorIs(t, v, client.ErrAppVersionBlocked)
	b := &client.OAuthError{Status: 403, Code: "check_blocked", Body: map[string]any{"blocked_until": "2026-12-03T10:00:00Z", "check": "SMSOTP"}}
	require.ErrorIs(t, b, client.ErrCheckBlocked)
	require.Equal(t, "SMSOTP", b.Check())
	require.Equal(t, 2026, b.BlockedUntil().Year())
	require.NotErrorIs(t, &client.OAuthError{Code: "unknown"}, nil)
}
