package update

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testManifest(v uint64) Manifest {
	m := Manifest{AppID: "com.example.app", Platform: "ios", AppVersions: ">=1.0 <2", BundleVersion: v,
		Created: t0, Expires: t0.Add(24 * time.Hour)}
	for i := range 3 {
		p := fmt.Sprintf("f%d.txt", i)
		m.Files = append(m.Files, File{Path: p, Size: int64(len(p)), SHA256: sha256.Sum256([]byte(p))})
	}
	return m
}

func TestManifestExpiryBoundary(t *testing.T) {
	t.Parallel()
	k := testKeys()[0]
	root, err := ParseRoot(simpleRoot(t, k))
	require.NoError(t, err)
	m := testManifest(1)
	signed, err := SignManifest(m, k)
	require.NoError(t, err)

	got, err := root.VerifyManifest(signed, m.Expires.Add(-time.Second))
	require.NoError(t, err, "one second before expiry is accepted")
	require.Equal(t, m.Files, got.Files)
	require.Equal(t, signed, got.Signed())

	_, err = root.VerifyManifest(signed, m.Expires)
	require.ErrorIs(t, err, ErrExpired, "a manifest whose expiry equals now is refused")
}

func TestManifestVerification(t *testing.T) {
	t.Parallel()
	k := testKeys()
	root2, err := ParseRoot(mustSign(t, Root{Version: 1, Expires: t0.Add(time.Hour), RootKeys: pubs(t, k[0]), RootThreshold: 1,
		ManifestKeys: pubs(t, k[1], k[2], k[3]), ManifestThreshold: 2}, k[0]))
	require.NoError(t, err)
	sign := func(m Manifest, ks ...crypto.Signer) []byte {
		b, err := SignManifest(m, ks...)
		require.NoError(t, err)
		return b
	}
	m := testManifest(4)
	tests := []struct {
		name string
		doc  []byte
		now  time.Time
		want error
	}{
		{"threshold met", sign(m, k[1], k[3]), t0, nil},
		{"below threshold", sign(m, k[2]), t0, ErrSignature},
		{"root key is not a manifest key", sign(m, k[0], k[1]), t0, ErrSignature},
		{"forged and expired reports the forgery", sign(m, k[4], k[5]), t0.Add(48 * time.Hour), ErrSignature},
		{"expired root", sign(m, k[1], k[2]), t0.Add(time.Hour), ErrExpired},
		{"tampered file hash", reencode(t, sign(m, k[1], k[2]), func(s string) string { return strings.Replace(s, `"sha256":"`, `"sha256":"00`, 1) }), t0, ErrSignature},
		{"root document as manifest", mustSign(t, Root{Version: 1, Expires: t0.Add(time.Hour), RootKeys: pubs(t, k[1], k[2]), RootThreshold: 2,
			ManifestKeys: pubs(t, k[1]), ManifestThreshold: 1}, k[1], k[2]), t0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := root2.VerifyManifest(tc.doc, tc.now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func mustSign(t *testing.T, r Root, ks ...crypto.Signer) []byte {
	t.Helper()
	b, err := SignRoot(r, ks...)
	require.NoError(t, err)
	return b
}

func TestSignManifestRefusesBadContent(t *testing.T) {
	t.Parallel()
	k := testKeys()[0]
	tests := []struct {
		name string
		edit func(*Manifest)
		want error
	}{
		{"unsorted files", func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] }, ErrMalformed},
		{"duplicate file", func(m *Manifest) { m.Files[1] = m.Files[0] }, ErrMalformed},
		{"escaping path", func(m *Manifest) { m.Files[0].Path = "../x" }, ErrUnsafePath},
		{"absolute path", func(m *Manifest) { m.Files[0].Path = "/etc/passwd" }, ErrUnsafePath},
		{"case collision", func(m *Manifest) { m.Files[0].Path = "F1.txt" }, ErrUnsafePath},
		{"bad range", func(m *Manifest) { m.AppVersions = "1.0" }, ErrMalformed},
		{"version zero", func(m *Manifest) { m.BundleVersion = 0 }, ErrMalformed},
		{"expires before created", func(m *Manifest) { m.Expires = m.Created }, ErrMalformed},
		{"bad app id", func(m *Manifest) { m.AppID = "../app" }, ErrMalformed},
		{"negative size", func(m *Manifest) { m.Files[0].Size = -1 }, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := testManifest(1)
			m.Files = append([]File(nil), m.Files...)
			tc.edit(&m)
			_, err := SignManifest(m, k)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestCheckPath(t *testing.T) {
	t.Parallel()
	good := []string{"index.html", "a/b/c.js", "with space/x.css", ".well-known/x", "a..b", "~user", "x/.moat"}
	bad := []string{"", "/abs", "../x", "a/../b", "a//b", "a/./b", "./a", `a\b`, "c:/x", "a/", "trailing.", "sp ", ".moat/x",
		".MOAT/delta.json", "tab\tx", "nul\x00", "é.html", strings.Repeat("a", 1025)}
	for _, p := range good {
		require.NoError(t, checkPath(p), p)
	}
	for _, p := range bad {
		require.ErrorIs(t, checkPath(p), ErrUnsafePath, "%q", p)
	}
	sets := []struct {
		paths []string
		ok    bool
	}{
		{[]string{"A/x", "B/y", "a.txt"}, true},
		{[]string{"A/x", "a/y"}, false},
		{[]string{"a", "a/b"}, false},
		{[]string{"A", "a/b"}, false},
		{[]string{"A/b", "a"}, false},
		{[]string{"README", "readme"}, false},
	}
	for _, s := range sets {
		err := checkPathSet(s.paths)
		require.Equal(t, s.ok, err == nil, "%v: %v", s.paths, err)
	}
}

func TestVersionRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rng, v string
		want   bool
	}{
		{"*", "9.9", true},
		{">=1.2 <2", "1.2", true},
		{">=1.2 <2", "1.2.0.0", true},
		{">=1.2 <2", "1.10", true},
		{">=1.2 <2", "2.0", false},
		{">=1.2 <2", "1.1.9", false},
		{"=3.0.1", "3.0.1", true},
		{">1 <=1.5", "1.5", true},
		{">1 <=1.5", "1", false},
		{"1.0", "1.0", false},    // no operator: not a range
		{">=1.02", "1.2", false}, // leading zero: not a version
		{">=1", "1.2-beta", false},
		{">=1", "*", true},
		{"", "1", false},
		{">=1  <2", "1", false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, rangeMatches(tc.rng, tc.v), "%q in %q", tc.v, tc.rng)
	}
}

func TestStrictJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		A int `json:"a"`
		B struct {
			C int `json:"c"`
		} `json:"b"`
	}
	require.NoError(t, decodeStrict([]byte(`{"a":1,"b":{"c":2}}`), &v, "a", "b"))
	for _, doc := range []string{
		`{"a":1,"a":2}`, `{"a":1,"b":{"c":1,"c":2}}`, `{"a":1} {}`, `[1]`, `{"a":1`, `{"a":1,"x":2}`,
		`{"b":{}}`, `{"a":1.5,"b":{}}`, `{"a":1,"b":` + strings.Repeat(`[`, 20) + strings.Repeat(`]`, 20) + `}`,
		// encoding/json alone would match these to "a" and "c" without
		// case, so that Go reads 2 where an exact parser reads 1.
		`{"a":1,"A":2,"b":{"c":1}}`, `{"a":1,"b":{"c":1,"C":2}}`, `{"A":1,"b":{}}`,
		"{\"a\":1,\"b\":{\"c\":1,\"\u212a\":2}}", // KELVIN SIGN folds to k, not c: still not a member
		"{\"a\":1,\"b\":{\"\u017fc\":2}}",        // LATIN SMALL LETTER LONG S
	} {
		require.ErrorIs(t, decodeStrict([]byte(doc), &v, "a", "b"), ErrMalformed, doc)
	}
}

// TestManifestMemberCase signs a manifest payload that repeats a member
// with another case. Go's encoding/json would take the second value, a
// Swift or Kotlin parser the first: the document must be malformed.
func TestManifestMemberCase(t *testing.T) {
	t.Parallel()
	k := testKeys()[0]
	root, err := ParseRoot(simpleRoot(t, k))
	require.NoError(t, err)
	signed, err := SignManifest(testManifest(1), k)
	require.NoError(t, err)
	_, err = root.VerifyManifest(signed, t0)
	require.NoError(t, err)
	for _, edit := range []func(string) string{
		func(s string) string {
			return strings.Replace(s, `"bundle_version":1,`, `"bundle_version":1,"Bundle_version":99,`, 1)
		},
		func(s string) string {
			return strings.Replace(s, `"mandatory":false`, `"mandatory":false,"MANDATORY":true`, 1)
		},
		func(s string) string { return strings.Replace(s, `"size":`, `"Size":`, 1) },
	} {
		p, err := unverifiedPayload(signed)
		require.NoError(t, err)
		edited := edit(string(p))
		require.NotEqual(t, string(p), edited)
		doc, err := signEnvelope([]byte(edited), typManifest, []crypto.Signer{k})
		require.NoError(t, err)
		_, err = root.VerifyManifest(doc, t0)
		require.ErrorIs(t, err, ErrMalformed, edited)
	}
}
