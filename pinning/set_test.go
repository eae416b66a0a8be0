package pinning

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewSetValidation(t *testing.T) {
	t.Parallel()
	a, b := randomPin(t), randomPin(t)
	exp := testNow.Add(90 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		cfg  SetConfig
		want error
	}{
		{"ok", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}}, nil},
		{"ok with expiry", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}, Expires: exp, AfterExpiry: StopEnforcing}, nil},
		{"no rules", SetConfig{}, ErrInvalidSet},
		{"one pin", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a}}}}, ErrNoBackupPin},
		{"same pin twice", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, a}}}}, ErrInvalidSet},
		{"one pin, insecure", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a}}}, InsecureNoBackupPin: true}, nil},
		{"no pins, insecure", SetConfig{Rules: []Rule{{Pattern: "api.example.com"}}, InsecureNoBackupPin: true}, ErrInvalidSet},
		{"public suffix", SetConfig{Rules: []Rule{{Pattern: "*.com", Pins: []Pin{a, b}}}}, ErrPublicSuffix},
		{"bad pattern", SetConfig{Rules: []Rule{{Pattern: "a.*.com", Pins: []Pin{a, b}}}}, ErrInvalidPattern},
		{"pattern twice", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}, {Pattern: "API.example.com.", Pins: []Pin{a, b}}}}, ErrInvalidSet},
		{"expiry without choice", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}, Expires: exp}, ErrInvalidSet},
		{"choice without expiry", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}, AfterExpiry: KeepEnforcing}, ErrInvalidSet},
		{"unknown choice", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}}, Expires: exp, AfterExpiry: 7}, ErrInvalidSet},
		{"too many pins", SetConfig{Rules: []Rule{{Pattern: "api.example.com", Pins: make([]Pin, MaxPinsPerRule+1)}}}, ErrInvalidSet},
	} {
		_, err := NewSet(tc.cfg)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.want, tc.name)
		}
	}
	many := make([]Rule, MaxRules+1)
	_, err := NewSet(SetConfig{Rules: many})
	require.ErrorIs(t, err, ErrInvalidSet)
}

func TestSetIsImmutable(t *testing.T) {
	t.Parallel()
	a, b, c := randomPin(t), randomPin(t), randomPin(t)
	pins := []Pin{a, b}
	s := setFor(t, "api.example.com", pins...)
	pins[0] = c
	got, _ := s.PinsFor("api.example.com")
	require.Equal(t, []Pin{a, b}, got)
	rules := s.Rules()
	rules[0].Pins[0] = c
	got, _ = s.PinsFor("api.example.com")
	require.Equal(t, []Pin{a, b}, got)
}

func TestPinsForUnion(t *testing.T) {
	t.Parallel()
	a, b, c := randomPin(t), randomPin(t), randomPin(t)
	s, err := NewSet(SetConfig{Rules: []Rule{
		{Pattern: "**.example.com", Pins: []Pin{a, b}},
		{Pattern: "api.example.com", Pins: []Pin{b, c}},
	}})
	require.NoError(t, err)
	got, pinned := s.PinsFor("API.example.com.")
	require.True(t, pinned)
	require.Equal(t, []Pin{a, b, c}, got)
	got, pinned = s.PinsFor("www.example.com")
	require.True(t, pinned)
	require.Equal(t, []Pin{a, b}, got)
	_, pinned = s.PinsFor("example.org")
	require.False(t, pinned)
	_, pinned = s.PinsFor("not a host")
	require.False(t, pinned)
}

// The manifest's expectations: a set with any of the chain's three pins
// matches; one with only the USERTrust pin does not.
func TestVerifyChainManifest(t *testing.T) {
	t.Parallel()
	chain := readPEMChain(t, appleChainFile)
	backup := randomPin(t)
	for _, p := range []string{appleLeafPin, appleCAPin, appleRootPin} {
		s := setFor(t, "attest.example.com", mustPin(t, p), backup)
		require.NoError(t, s.VerifyChain("attest.example.com", chain, testNow), p)
	}
	s := setFor(t, "attest.example.com", mustPin(t, userTrustPin), backup)
	err := s.VerifyChain("attest.example.com", chain, testNow)
	require.ErrorIs(t, err, ErrPinMismatch)
	var pe *PinError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []Pin{mustPin(t, appleLeafPin), mustPin(t, appleCAPin), mustPin(t, appleRootPin)}, pe.Chain)
	require.Contains(t, err.Error(), appleLeafPin)

	require.ErrorIs(t, s.VerifyChain("other.example.com", chain, testNow), ErrHostNotPinned)
	require.ErrorIs(t, s.VerifyChain("attest.example.com", nil, testNow), ErrNoVerifiedChain)
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	a, b := randomPin(t), randomPin(t)
	chain := readPEMChain(t, appleChainFile)
	exp := testNow.Add(time.Hour)
	for _, tc := range []struct {
		after       AfterExpiry
		enforcedEnd bool
	}{{KeepEnforcing, true}, {StopEnforcing, false}} {
		s, err := NewSet(SetConfig{Rules: []Rule{{Pattern: "x.example.com", Pins: []Pin{a, b}}}, Expires: exp, AfterExpiry: tc.after})
		require.NoError(t, err)
		require.False(t, s.Expired(testNow))
		require.True(t, s.Enforced(testNow))
		require.True(t, s.Expired(exp), "expired at the instant of expiry")
		require.Equal(t, tc.enforcedEnd, s.Enforced(exp))
		err = s.VerifyChain("x.example.com", chain, exp.Add(time.Minute))
		if tc.enforcedEnd {
			require.ErrorIs(t, err, ErrPinMismatch)
		} else {
			require.NoError(t, err)
		}
	}
	never := setFor(t, "x.example.com", a, b)
	require.False(t, never.Expired(testNow.Add(100*365*24*time.Hour)))
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	chain := readPEMChain(t, appleChainFile)
	leaf, ca := mustPin(t, appleLeafPin), mustPin(t, appleCAPin)
	host := "attest.example.com"

	good, err := NewSet(SetConfig{Rules: []Rule{{Pattern: host, Pins: []Pin{ca, randomPin(t)}}}, Expires: testNow.Add(90 * 24 * time.Hour), AfterExpiry: KeepEnforcing})
	require.NoError(t, err)
	require.Empty(t, good.Warnings(host, chain, testNow))

	allInChain := setFor(t, host, leaf, ca)
	w := allInChain.Warnings(host, chain, testNow)
	require.Len(t, w, 1)
	require.Contains(t, w[0], "no backup pin outside the chain")

	require.Contains(t, good.Warnings("other.example.com", chain, testNow)[0], "no rule covers")
	soon := good.Warnings(host, chain, testNow.Add(70*24*time.Hour))
	require.Len(t, soon, 1)
	require.Contains(t, soon[0], "in less than 30 days")
	gone := good.Warnings(host, chain, testNow.Add(91*24*time.Hour))
	require.Contains(t, gone[0], "expired")

	insecure, err := NewSet(SetConfig{Rules: []Rule{{Pattern: host, Pins: []Pin{randomPin(t)}}}, InsecureNoBackupPin: true})
	require.NoError(t, err)
	require.Contains(t, strings.Join(insecure.Warnings(host, chain, testNow), "\n"), "insecure_no_backup_pin")
}

func TestSetJSON(t *testing.T) {
	t.Parallel()
	a, b := mustPin(t, appleLeafPin), mustPin(t, userTrustPin)
	s, err := NewSet(SetConfig{
		Version: 3, Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), AfterExpiry: KeepEnforcing,
		Rules: []Rule{{Pattern: "api.example.com", Pins: []Pin{a, b}}, {Pattern: "**.cdn.example.com", Pins: []Pin{b, a}}},
	})
	require.NoError(t, err)
	b1, err := s.MarshalJSON()
	require.NoError(t, err)
	require.JSONEq(t, `{"version":3,"expires":"2027-01-01T00:00:00Z","after_expiry":"keep-enforcing","rules":[
		{"pattern":"api.example.com","pins":["`+appleLeafPin+`","`+userTrustPin+`"]},
		{"pattern":"**.cdn.example.com","pins":["`+userTrustPin+`","`+appleLeafPin+`"]}]}`, string(b1))
	back, err := ParseSet(b1)
	require.NoError(t, err)
	require.Equal(t, s, back)

	pins := `"pins":["` + appleLeafPin + `","` + userTrustPin + `"]`
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}]}`, nil},
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}],"extra":1}`, ErrInvalidSet},
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}]} {}`, ErrInvalidSet},
		{`{"rules":[{"pattern":"a.example.com","pins":["sha1/abc"]}]}`, ErrInvalidPin},
		{`{"rules":[{"pattern":"*.com",` + pins + `}]}`, ErrPublicSuffix},
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}],"expires":"tomorrow","after_expiry":"keep-enforcing"}`, ErrInvalidSet},
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}],"expires":"2027-01-01T00:00:00Z","after_expiry":"maybe"}`, ErrInvalidSet},
		{`{"rules":[{"pattern":"a.example.com",` + pins + `}],"version":-1}`, ErrInvalidSet},
		{`{"rules":[{"pattern":"a.example.com","pins":["` + appleLeafPin + `"]}]}`, ErrNoBackupPin},
		{`[]`, ErrInvalidSet},
		{``, ErrInvalidSet},
		{`{"rules":[{"pattern":`, ErrInvalidSet},
	} {
		_, err := ParseSet([]byte(tc.in))
		if tc.want == nil {
			require.NoError(t, err, tc.in)
		} else {
			require.ErrorIs(t, err, tc.want, tc.in)
		}
	}
}
