package pinning

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The table: OkHttp's pattern rules.
func TestPatternMatch(t *testing.T) {
	t.Parallel()
	hosts := []string{"a.example.com", "a.b.example.com", "example.com", "a.example.com.evil.net", "A.EXAMPLE.COM."}
	want := map[string][]bool{
		"*.example.com":  {true, false, false, false, true},
		"**.example.com": {true, true, true, false, true},
		"example.com":    {false, false, true, false, false},
	}
	for pat, results := range want {
		p, err := parsePattern(pat)
		require.NoError(t, err, pat)
		// The same answers through the public path: a set's rule.
		set := setFor(t, pat, randomPin(t), randomPin(t))
		for i, h := range hosts {
			n, _, ok := normalizeHost(h)
			require.True(t, ok, h)
			require.Equal(t, results[i], p.match(n), "pattern %q host %q", pat, h)
			_, pinned := set.PinsFor(h)
			require.Equal(t, results[i], pinned, "set with pattern %q, host %q", pat, h)
		}
	}
}

func TestPatternMatchMore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*.example.com", "badexample.com", false},
		{"**.example.com", "badexample.com", false},
		{"**.example.com", "a.badexample.com", false},
		{"*.example.com", ".example.com", false},
		{"EXAMPLE.com.", "example.COM", true},
		{"*.Example.Com", "x.example.com.", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"::1", "[::1]", true},
		{"::1", "0:0:0:0:0:0:0:1", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"localhost", "localhost", true},
		{"localhost", "localhost.", true},
		{"**.example.com", "example.com.evil.net", false},
		{"example.com", "example.com..", false},
		{"example.com", "exämple.com", false},
	} {
		p, err := parsePattern(tc.pattern)
		require.NoError(t, err, tc.pattern)
		n, _, ok := normalizeHost(tc.host)
		require.Equal(t, tc.want, ok && p.match(n), "pattern %q host %q", tc.pattern, tc.host)
	}
}

func TestParsePatternRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"*.com", ErrPublicSuffix},
		{"**.co", ErrPublicSuffix},
		{"**.COM.", ErrPublicSuffix},
		{"*.co.uk", ErrPublicSuffix},
		{"**.github.io", ErrPublicSuffix},
		{"*.localhost", ErrPublicSuffix},
		{"", ErrInvalidPattern},
		{"*", ErrInvalidPattern},
		{"**", ErrInvalidPattern},
		{"*.", ErrInvalidPattern},
		{"a.*.example.com", ErrInvalidPattern},
		{"*example.com", ErrInvalidPattern},
		{"***.example.com", ErrInvalidPattern},
		{"*.*.example.com", ErrInvalidPattern},
		{"example..com", ErrInvalidPattern},
		{".example.com", ErrInvalidPattern},
		{"exa mple.com", ErrInvalidPattern},
		{"exämple.com", ErrInvalidPattern},
		{"*.127.0.0.1", ErrInvalidPattern},
		{"**.::1", ErrInvalidPattern},
		{"1.2.3.999", ErrInvalidPattern},
		{"fe80::1%eth0", ErrInvalidPattern},
		{"a234567890123456789012345678901234567890123456789012345678901234.com", ErrInvalidPattern},
	} {
		_, err := parsePattern(tc.in)
		require.ErrorIs(t, err, tc.want, "%q", tc.in)
	}
	for _, ok := range []string{"*.example.co.uk", "**.example.com", "api.example.com", "com", "localhost", "*.myapp.github.io", "xn--bcher-kva.example", "_svc.example.com"} {
		p, err := parsePattern(ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, p.String())
	}
}
