package analytics

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const sampleJWT = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"

func TestScrub(t *testing.T) {
	t.Parallel()
	spaced := base64.RawURLEncoding.EncodeToString([]byte(`{ "alg": "none" }`))
	for _, tc := range []struct{ in, want string }{
		{"travel", "travel"},
		{"", ""},
		{"2.4.1", "2.4.1"},
		{"GET /trips/{id}", "GET /trips/{id}"},
		{"iPhone15,2", "iPhone15,2"},
		{"Pixel 8", "Pixel 8"},
		{"wrong_password", "wrong_password"},
		{"api.travel.example", "api.travel.example"},
		{sampleJWT, RedactedJWT},
		{"token " + sampleJWT + " refused", "token " + RedactedJWT + " refused"},
		{"/reset/" + sampleJWT, RedactedJWT},
		{spaced + "." + spaced + ".sig", RedactedJWT},
		{"e30.e30.", RedactedJWT},            // {} . {} with no signature
		{"eyJhbGciOiJub25lIn0", RedactedJWT}, // a lone header
		{sampleJWT[:60], RedactedJWT},        // a cut JWT
		{"/trips?access_token=abc123&x=1", "/trips?access_token=[redacted]&x=1"},
		{"?code=493817", "?code=[redacted]"},
		{"password=hunter2;next=1", "password=[redacted];next=1"},
		{"client_secret=s3cr3t, pin=1234", "client_secret=[redacted], pin=[redacted]"},
		{"API_KEY=abc", "API_KEY=[redacted]"},
		{"X-Session-Id=zzz", "X-Session-Id=[redacted]"},
		{"promo=SUMMER", "promo=SUMMER"},
		{"code=", "code="},
		{"Bearer abc.def", "Bearer [redacted]"},
		{"authorization: DPoP abcdef", "authorization: DPoP [redacted]"},
		{"basic dXNlcjpwYXNz", "basic [redacted]"},
		{"line\nbreak\x00", "line?break?"},
		{"caf\xe9", "caf?"},
		{"café ☕", "café ☕"},
	} {
		got := Scrub(tc.in)
		require.Equal(t, tc.want, got, "Scrub(%q)", tc.in)
		require.Equal(t, got, Scrub(got), "Scrub is not idempotent on %q", tc.in)
	}
}

func TestScrubDoesNotAllocateForCleanLabels(t *testing.T) {
	for _, s := range []string{"travel", "GET /trips/{id}", "2.4.1", "iPhone15,2", "wrong_password"} {
		require.Zero(t, testing.AllocsPerRun(100, func() { _ = Scrub(s) }), s)
	}
}

func TestCleanLabelCutsAtRuneBoundary(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxLabelLen) // 2 bytes each
	got := cleanLabel(long)
	require.LessOrEqual(t, len(got), MaxLabelLen)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, "short", cleanLabel("short"))
}

func TestPseudonym(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(benchKey)
	a, b := p.device("device-1"), p.device("device-2")
	require.Regexp(t, `^d_[A-Za-z0-9_-]{22}$`, a)
	require.NotEqual(t, a, b)
	require.Equal(t, a, p.device("device-1"))
	require.Equal(t, a, newPseudonymizer(benchKey).device("device-1"), "stable for a key")
	other := newPseudonymizer([]byte("another key of at least 32 bytes!!"))
	require.NotEqual(t, a, other.device("device-1"), "depends on the key")
	require.Empty(t, p.device(""))
	require.NotContains(t, a, "device")
	// The cache stays bounded.
	for i := range pseudonymCacheSize + 10 {
		p.device(strings.Repeat("x", i%50) + string(rune('a'+i%26)) + strings.Repeat("y", i/26))
	}
	require.LessOrEqual(t, len(p.cache), pseudonymCacheSize)
}
