package pinning

import (
	"crypto"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func FuzzParseDocument(f *testing.F) {
	key, edKey := newKey(f), ed25519Key(f)
	keys := []crypto.PublicKey{key.Public(), edKey.Public()}
	real := []Pin{mustPin(f, appleLeafPin), mustPin(f, appleCAPin), mustPin(f, appleRootPin), mustPin(f, userTrustPin)}
	for i, signer := range []crypto.Signer{key, edKey} {
		doc := mustSign(f, publishable(f, uint64(i+1), real[i], real[i+2]), signer)
		f.Add(doc.Raw())
		parts := strings.Split(string(doc.Raw()), ".")
		f.Add([]byte(parts[0] + "." + parts[1] + "."))
		f.Add([]byte(parts[0] + ".." + parts[2]))
		f.Add([]byte(parts[1] + "." + parts[0] + "." + parts[2]))
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", `{"payload":"e30"}`, strings.Repeat("A", 1000) + ".." + "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument(data, keys)
		if err != nil {
			return
		}
		require.Equal(t, strings.TrimSpace(string(data)), string(doc.Raw()))
		require.NoError(t, checkPublishable(doc.Set, doc.IssuedAt))
	})
}

func FuzzParseSet(f *testing.F) {
	pins := `"pins":["` + appleLeafPin + `","` + appleCAPin + `","` + appleRootPin + `","` + userTrustPin + `"]`
	for _, s := range []string{
		`{"rules":[{"pattern":"api.example.com",` + pins + `}]}`,
		`{"version":3,"expires":"2027-01-01T00:00:00Z","after_expiry":"stop-enforcing","rules":[{"pattern":"**.example.co.uk",` + pins + `},{"pattern":"*.example.com",` + pins + `}]}`,
		`{"insecure_no_backup_pin":true,"rules":[{"pattern":"::1","pins":["` + userTrustPin + `"]}]}`,
		`{"rules":[{"pattern":"*.com",` + pins + `}]}`,
		`{"rules":[{"pattern":"a.example.com","pins":["sha256/","sha1/x"]}]}`,
		`{"rules":[]}`, `{}`, `[]`, `null`, ``, `{"rules":[{"pattern":"a.example.com"`,
		`{"expires":"2027-01-01T00:00:00Z","rules":[{"pattern":"a.example.com",` + pins + `}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSet(data)
		if err != nil {
			return
		}
		b, err := s.MarshalJSON()
		require.NoError(t, err)
		back, err := ParseSet(b)
		require.NoError(t, err)
		require.Equal(t, s, back)
	})
}

func FuzzParseReport(f *testing.F) {
	good, err := json.Marshal(Report{
		Host: "api.example.com", Port: 443, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Mode: ReportOnly,
		ServedChain: []Pin{mustPin(f, appleLeafPin)}, VerifiedChain: []Pin{mustPin(f, appleLeafPin), mustPin(f, appleCAPin), mustPin(f, appleRootPin)},
		KnownPins: []Pin{mustPin(f, userTrustPin)}, PinSetVersion: 2,
	})
	require.NoError(f, err)
	f.Add(good)
	for _, s := range []string{
		``, `{}`, `[]`, `{"host":"::1","time":"2026-01-01T00:00:00Z","mode":"enforce","served_chain":["` + userTrustPin + `"],"verified_chain":["` + userTrustPin + `"],"known_pins":["` + appleRootPin + `"]}`,
		`{"host":"a.example.com","port":99999}`, `{"mode":"x"}`, `{"host":"` + strings.Repeat("a", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(r)
		require.NoError(t, err)
		back, err := ParseReport(b)
		require.NoError(t, err)
		require.True(t, r.Time.Equal(back.Time))
		back.Time = r.Time
		require.Equal(t, r, back)
	})
}

func FuzzHostPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"*.example.com", "a.example.com"}, {"**.example.com", "A.EXAMPLE.COM."}, {"example.com", "a.example.com.evil.net"},
		{"*.com", "a.com"}, {"**.co.uk", "x.co.uk"}, {"::1", "[::1]"}, {"127.0.0.1", "127.0.0.1"}, {"*.*.a", "b.c.a"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, host string) {
		p, err := parsePattern(pat)
		h, _, ok := normalizeHost(host)
		if err != nil || !ok {
			return
		}
		again, err := parsePattern(p.String())
		require.NoError(t, err)
		require.Equal(t, p, again)
		if !p.match(h) {
			return
		}
		require.True(t, h == p.base || strings.HasSuffix(h, "."+p.base), "a match ends on a label boundary")
		if p.kind == oneLabel {
			require.Equal(t, strings.Count(p.base, ".")+1, strings.Count(h, "."))
		}
	})
}
