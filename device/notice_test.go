package device

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNoticeHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []Notice{
		{Message: "Please update", DownloadURL: "https://apps.apple.com/app/id123", MinVersion: "1.10.0"},
		{Message: "Mettez à jour: 100% \"gratuit\" \\o/ 日本"},
		{Message: ""},
		{Message: "line\nbreak\ttab", DownloadURL: `market://details?id=com.example"x\`},
	} {
		h := n.HeaderValue()
		for i := 0; i < len(h); i++ {
			require.True(t, h[i] >= 0x20 && h[i] < 0x7f, "header must be printable ASCII: %q", h)
		}
		got, err := ParseNotice(h)
		require.NoError(t, err, h)
		require.Equal(t, n, got, h)
	}
	require.Equal(t, `message=%"Mettez %c3%a0 jour", download_url="https://x.example/a", min_version="1.10.0"`,
		(&Notice{Message: "Mettez à jour", DownloadURL: "https://x.example/a", MinVersion: "1.10.0"}).HeaderValue())
}

func TestParseNotice(t *testing.T) {
	t.Parallel()
	n, err := ParseNotice(`future=?1, message=%"hi";lang=en, other=12.5, tok=a:b/c, download_url="u";p, neg=-3`)
	require.NoError(t, err)
	require.Equal(t, Notice{Message: "hi", DownloadURL: "u"}, n)

	n, err = ParseNotice(`message="plain string works too",message=%"last wins"`)
	require.NoError(t, err)
	require.Equal(t, "last wins", n.Message)

	for _, h := range []string{
		"", " ", "download_url=\"u\"", `message=%"unterminated`, `message="unterminated`, `message=%"%C3%A0"`,
		`message=%"%c3"`, `message=%"%zz"`, `message=%"%"`, `message="bad \q escape"`, `Message="upper key"`,
		`message="a",`, `message="a" message="b"`, `message=`, `message=@`, `message="a";`, `message="a";=1`,
		"message=\"tab\tinside\"", `message=%x"`, `message=?2`, strings.Repeat("a", maxNoticeHeaderLen+1),
	} {
		_, err := ParseNotice(h)
		require.ErrorIs(t, err, ErrMalformedNotice, "%q", h)
	}
}

func TestNoticeContext(t *testing.T) {
	t.Parallel()
	_, ok := NoticeFrom(context.Background())
	require.False(t, ok)
	n := &Notice{Message: "m"}
	got, ok := NoticeFrom(ContextWithNotice(context.Background(), n))
	require.True(t, ok)
	require.Same(t, n, got)
	_, ok = NoticeFrom(ContextWithNotice(context.Background(), nil))
	require.False(t, ok)
}

func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{
		`message=%"Mettez %c3%a0 jour", download_url="https://x.example/a", min_version="1.10.0"`,
		`message="a";p=1, x=?0, y=-1.5, z=tok/en`, `message=%"%"`, `message="\"\\"`, "", ",", "message",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n, err := ParseNotice(h)
		if err != nil {
			return
		}
		// What parses re-encodes to a header that parses to the same notice
		// (strings keep only printable ASCII in download_url and min_version).
		again, err := ParseNotice(n.HeaderValue())
		if err != nil || again.Message != n.Message {
			t.Fatalf("%q: re-encoded %q: %+v %v", h, n.HeaderValue(), again, err)
		}
	})
}
