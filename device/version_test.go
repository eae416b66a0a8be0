package device

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Version
	}{
		{"1.10.0", Version{Major: 1, Minor: 10}},
		{"1.10", Version{Major: 1, Minor: 10}},
		{"0.0.1", Version{Patch: 1}},
		{"1.10.0-beta.1", Version{Major: 1, Minor: 10, Pre: "beta.1"}},
		{"1.10-rc.1", Version{Major: 1, Minor: 10, Pre: "rc.1"}},
		{"1.2.3+build.5", Version{Major: 1, Minor: 2, Patch: 3, Build: "build.5"}},
		{"1.2.3-0.a-b+001", Version{Major: 1, Minor: 2, Patch: 3, Pre: "0.a-b", Build: "001"}},
		{"18446744073709551615.0.0", Version{Major: 18446744073709551615}},
	} {
		got, err := ParseVersion(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, in := range []string{
		"", "1", "v1.10.0", "V1.10.0", "1.x", "1.10.x", "1.*", "1.10.0.1", "01.10.0", "1.010.0", "1.10.00",
		" 1.10.0", "1.10.0 ", "1..0", ".1.0", "1.0.", "1.0-", "1.0+", "1.0.0-beta..1", "1.0.0-01", "1.0.0-beta_1",
		"1.0.0+b..c", "18446744073709551616.0.0", "-1.0.0", "+1.0.0", "1.0.0-é", "1,0,0", "latest",
		strings.Repeat("1", MaxVersionLen+1),
	} {
		_, err := ParseVersion(in)
		require.ErrorIs(t, err, ErrMalformedVersion, "%q", in)
	}
}

func TestVersionCompare(t *testing.T) {
	t.Parallel()
	// semver.org §11's example, in increasing precedence, plus two-part
	// spellings and numbers that order differently as text.
	ordered := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.9.1", "1.9.10", "1.10.0-beta.1", "1.10", "1.10.1", "1.11-rc.1",
		"2.0.0", "10.0.0",
	}
	for i, a := range ordered {
		va, err := ParseVersion(a)
		require.NoError(t, err)
		for j, b := range ordered {
			vb, err := ParseVersion(b)
			require.NoError(t, err)
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			require.Equal(t, want, va.Compare(vb), "%s vs %s", a, b)
		}
	}
	for _, eq := range [][2]string{
		{"1.10", "1.10.0"}, {"1.9.3+42", "1.9.3"}, {"1.9+a", "1.9.0+b"}, {"1.0-rc.1", "1.0.0-rc.1"},
	} {
		a, _ := ParseVersion(eq[0])
		b, _ := ParseVersion(eq[1])
		require.Zero(t, a.Compare(b), "%s == %s", eq[0], eq[1])
	}
}

func TestVersionString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"1.10": "1.10.0", "1.2.3-rc.1+b7": "1.2.3-rc.1+b7", "0.1": "0.1.0",
	} {
		v, err := ParseVersion(in)
		require.NoError(t, err)
		require.Equal(t, want, v.String())
	}
}

func TestParseVersionDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = parseVersion("1.10.0-beta.1+build.7")
		_, _ = parseVersion("1.x")
	})
	require.Zero(t, allocs)
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"1.10.0", "1.10", "1.9.1", "1.x", "", "v1.10.0", "1.10.0-beta.1", "1.2.3-0.a-b+001", "01.1.1",
		"18446744073709551616.0.0", "1.0.0-alpha.beta", "1.0.0+b..c",
	} {
		f.Add(s, "1.10.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, err := ParseVersion(a)
		if err != nil {
			return
		}
		// A parsed version's canonical spelling parses to an equal one.
		again, err := ParseVersion(va.String())
		if len(va.String()) <= MaxVersionLen {
			if err != nil || again != va {
				t.Fatalf("%q: canonical %q parses to %+v, %v", a, va.String(), again, err)
			}
		}
		if va.Compare(va) != 0 {
			t.Fatalf("%q not equal to itself", a)
		}
		vb, err := ParseVersion(b)
		if err != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("compare not antisymmetric: %q %q", a, b)
		}
	})
}
