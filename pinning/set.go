package pinning

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Limits on a pin set, so that a document or report stays small.
const (
	// MaxRules is the most rules a [Set] may hold.
	MaxRules = 64
	// MaxPinsPerRule is the most pins a [Rule] may hold.
	MaxPinsPerRule = 16
	// ExpiryWarning is how close to its expiry a set must be for
	// [Set.Warnings] (and "moat pins check") to warn.
	ExpiryWarning = 30 * 24 * time.Hour
)

// A Rule pins every host matching Pattern to Pins: a connection to such a
// host passes when a certificate on its verified chain has one of Pins.
type Rule struct {
	// Pattern is an exact host ("api.example.com", "127.0.0.1"), "*."
	// before a host (exactly one more label: "*.example.com" matches
	// "a.example.com", not "example.com" nor "a.b.example.com") or "**."
	// before a host (zero or more labels: "**.example.com" matches all
	// three). Matching is case-insensitive, ignores a trailing dot, and is
	// on whole labels. When several rules match a host, their pins add up.
	Pattern string `json:"pattern"`
	// Pins must hold at least two distinct pins: the key in service and a
	// backup key that is not in the served chain (see [GenerateBackup]).
	Pins []Pin `json:"pins"`
}

// AfterExpiry is what a pin set does once its expiry has passed. There is
// no default: a set with an expiry must say which.
type AfterExpiry uint8

const (
	// KeepEnforcing enforces the pins after the expiry as before. The safe
	// choice against an attacker; an app that never gets a fresh set keeps
	// refusing a server whose keys all changed.
	KeepEnforcing AfterExpiry = iota + 1
	// StopEnforcing stops pinning after the expiry (TrustKit's behaviour):
	// connections are then checked by ordinary certificate verification
	// only. An app that is never updated cannot be locked out for good,
	// but loses the protection pinning gives.
	StopEnforcing
)

// String returns "keep-enforcing", "stop-enforcing", or "" when unset.
func (a AfterExpiry) String() string {
	switch a {
	case KeepEnforcing:
		return "keep-enforcing"
	case StopEnforcing:
		return "stop-enforcing"
	}
	return ""
}

// MarshalText returns the String form; an unset or unknown value is an
// error.
func (a AfterExpiry) MarshalText() ([]byte, error) {
	if s := a.String(); s != "" {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%w: after_expiry must be keep-enforcing or stop-enforcing", ErrInvalidSet)
}

// UnmarshalText parses "keep-enforcing" or "stop-enforcing".
func (a *AfterExpiry) UnmarshalText(b []byte) error {
	for _, v := range []AfterExpiry{KeepEnforcing, StopEnforcing} {
		if string(b) == v.String() {
			*a = v
			return nil
		}
	}
	return fmt.Errorf("%w: after_expiry must be keep-enforcing or stop-enforcing", ErrInvalidSet)
}

// SetConfig describes a pin set for [NewSet].
type SetConfig struct {
	// Version orders sets published as signed documents: a client never
	// replaces its set with a lower version. Zero marks a set that is not
	// published (one built into an app); a signed document needs at least 1.
	Version uint64
	// Rules are the host patterns and their pins. At least one; at most
	// [MaxRules]; no pattern twice.
	Rules []Rule
	// Expires is when the set expires. Zero means it never does (and then
	// AfterExpiry must be zero). A signed document needs an expiry.
	Expires time.Time
	// AfterExpiry says what the set does after Expires. Zero is refused
	// when Expires is set: the operator chooses explicitly.
	AfterExpiry AfterExpiry
	// InsecureNoBackupPin allows rules with a single pin. False (the zero
	// value) refuses them with ErrNoBackupPin: with one pin, the day that
	// key changes every installed app is locked out until it is updated.
	// A signed document never carries such a set.
	InsecureNoBackupPin bool
}

// A Set is a validated, immutable pin set: rules per host pattern, a
// version, and an optional expiry. It is safe for concurrent use. A *Set is
// itself a [Source] that always returns itself.
type Set struct {
	version     uint64
	rules       []setRule
	expires     time.Time
	afterExpiry AfterExpiry
	noBackup    bool
}

type setRule struct {
	pattern pattern
	text    string // Pattern as given
	pins    []Pin
}

var _ Source = (*Set)(nil)

// NewSet validates cfg and returns the set: every pattern parses and pins
// no public suffix ([ErrInvalidPattern], [ErrPublicSuffix]), every rule has
// two distinct pins ([ErrNoBackupPin]) unless InsecureNoBackupPin, and an
// expiry comes with its AfterExpiry ([ErrInvalidSet]).
func NewSet(cfg SetConfig) (*Set, error) {
	s := &Set{version: cfg.Version, noBackup: cfg.InsecureNoBackupPin}
	if len(cfg.Rules) == 0 || len(cfg.Rules) > MaxRules {
		return nil, fmt.Errorf("%w: want 1 to %d rules, have %d", ErrInvalidSet, MaxRules, len(cfg.Rules))
	}
	switch {
	case cfg.Expires.IsZero() && cfg.AfterExpiry != 0:
		return nil, fmt.Errorf("%w: after_expiry given without an expiry", ErrInvalidSet)
	case !cfg.Expires.IsZero() && cfg.AfterExpiry.String() == "":
		return nil, fmt.Errorf("%w: an expiry needs after_expiry: keep-enforcing or stop-enforcing", ErrInvalidSet)
	}
	s.expires, s.afterExpiry = cfg.Expires.UTC().Truncate(time.Second), cfg.AfterExpiry
	seen := make(map[pattern]bool, len(cfg.Rules))
	for i, r := range cfg.Rules {
		p, err := parsePattern(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("%w: rule %d: pattern %q appears twice", ErrInvalidSet, i, r.Pattern)
		}
		seen[p] = true
		if len(r.Pins) > MaxPinsPerRule {
			return nil, fmt.Errorf("%w: rule %d (%q): more than %d pins", ErrInvalidSet, i, r.Pattern, MaxPinsPerRule)
		}
		for j, pin := range r.Pins {
			if slices.Contains(r.Pins[:j], pin) {
				return nil, fmt.Errorf("%w: rule %d (%q): pin %s appears twice", ErrInvalidSet, i, r.Pattern, pin)
			}
		}
		need := 2
		if cfg.InsecureNoBackupPin {
			need = 1
		}
		if len(r.Pins) < need {
			if need == 1 {
				return nil, fmt.Errorf("%w: rule %d (%q) has no pins", ErrInvalidSet, i, r.Pattern)
			}
			return nil, fmt.Errorf("rule %d (%q): %w", i, r.Pattern, ErrNoBackupPin)
		}
		s.rules = append(s.rules, setRule{pattern: p, text: r.Pattern, pins: slices.Clone(r.Pins)})
	}
	return s, nil
}

// MustNewSet is [NewSet] for sets written in the program's source: it
// panics on an error.
func MustNewSet(cfg SetConfig) *Set {
	s, err := NewSet(cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// Current returns s, so that a fixed *Set is a [Source].
func (s *Set) Current() *Set { return s }

// Version returns the set's version (0 for an unpublished set).
func (s *Set) Version() uint64 { return s.version }

// Expires returns the set's expiry, or the zero time if it never expires.
func (s *Set) Expires() time.Time { return s.expires }

// AfterExpiry returns what the set does after its expiry (zero if it has
// none).
func (s *Set) AfterExpiry() AfterExpiry { return s.afterExpiry }

// Rules returns a copy of the set's rules.
func (s *Set) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = Rule{Pattern: r.text, Pins: slices.Clone(r.pins)}
	}
	return out
}

// Expired reports whether now is at or after the set's expiry.
func (s *Set) Expired(now time.Time) bool {
	return !s.expires.IsZero() && !now.Before(s.expires)
}

// Enforced reports whether the set's pins apply at now: always, except
// after the expiry of a set marked [StopEnforcing].
func (s *Set) Enforced(now time.Time) bool {
	return !s.Expired(now) || s.afterExpiry == KeepEnforcing
}

// PinsFor returns the pins that apply to host (those of every matching
// rule) and whether any rule matches it.
func (s *Set) PinsFor(host string) (pins []Pin, pinned bool) {
	h, _, ok := normalizeHost(host)
	if !ok {
		return nil, false
	}
	for _, r := range s.rules {
		if r.pattern.match(h) {
			pinned = true
			for _, p := range r.pins {
				if !slices.Contains(pins, p) {
					pins = append(pins, p)
				}
			}
		}
	}
	return pins, pinned
}

// check reports whether a rule covers host and whether a certificate on
// one of chains carries one of its pins. It is the verifier's hot path.
func (s *Set) check(host string, chains [][]*x509.Certificate) (pinned, matched bool) {
	h, _, ok := normalizeHost(host)
	if !ok {
		return false, false
	}
	var got []Pin
	for _, r := range s.rules {
		if !r.pattern.match(h) {
			continue
		}
		pinned = true
		if got == nil {
			got = chainPins(chains)
		}
		for _, want := range r.pins {
			if slices.Contains(got, want) {
				return true, true
			}
		}
	}
	return pinned, false
}

// chainPins returns the pins of every certificate on chains.
func chainPins(chains [][]*x509.Certificate) []Pin {
	n := 0
	for _, c := range chains {
		n += len(c)
	}
	out := make([]Pin, 0, n)
	for _, c := range chains {
		for _, cert := range c {
			out = append(out, PinOf(cert))
		}
	}
	return out
}

// VerifyChain checks chain (leaf first, as it would be verified) against
// the set for host at now, as a TLS connection would: nil when a
// certificate on it has one of host's pins or the set is no longer
// enforced; [ErrHostNotPinned] when no rule covers host; a [*PinError]
// when no pin matches; [ErrNoVerifiedChain] for an empty chain. It does
// not verify the chain itself.
func (s *Set) VerifyChain(host string, chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return ErrNoVerifiedChain
	}
	if !s.Enforced(now) {
		return nil
	}
	pinned, matched := s.check(host, [][]*x509.Certificate{chain})
	switch {
	case !pinned:
		return fmt.Errorf("%w: %q", ErrHostNotPinned, host)
	case !matched:
		pins, _ := s.PinsFor(host)
		return &PinError{Host: host, Chain: chainPins([][]*x509.Certificate{chain}), Pins: pins}
	}
	return nil
}

// Warnings lists what an operator should fix before deploying chain (leaf
// first) for host with this set, judged at now: no rule for host, no
// backup pin outside the chain (a key rotation would lock apps out), a
// set that has expired or expires within [ExpiryWarning], and a set that
// allows single-pin rules.
func (s *Set) Warnings(host string, chain []*x509.Certificate, now time.Time) []string {
	var w []string
	pins, pinned := s.PinsFor(host)
	if !pinned {
		w = append(w, fmt.Sprintf("no rule covers host %q: its connections are not pinned", host))
	} else {
		inChain := chainPins([][]*x509.Certificate{chain})
		backup := slices.ContainsFunc(pins, func(p Pin) bool { return !slices.Contains(inChain, p) })
		if !backup {
			w = append(w, fmt.Sprintf("no backup pin outside the chain for %q: if the pinned keys change, installed apps are locked out", host))
		}
	}
	switch {
	case s.Expired(now):
		w = append(w, fmt.Sprintf("the set expired at %s (after expiry: %s)", s.expires.Format(time.RFC3339), s.afterExpiry))
	case !s.expires.IsZero() && s.expires.Sub(now) < ExpiryWarning:
		w = append(w, fmt.Sprintf("the set expires at %s, in less than %d days", s.expires.Format(time.RFC3339), int(ExpiryWarning.Hours()/24)))
	}
	if s.noBackup {
		w = append(w, "the set allows rules without a backup pin (insecure_no_backup_pin)")
	}
	return w
}

// setJSON is the JSON form of a set, shared by [ParseSet] and the payload
// of signed documents.
type setJSON struct {
	Version             uint64      `json:"version,omitempty"`
	Expires             string      `json:"expires,omitempty"`
	AfterExpiry         AfterExpiry `json:"after_expiry,omitempty"`
	InsecureNoBackupPin bool        `json:"insecure_no_backup_pin,omitempty"`
	Rules               []Rule      `json:"rules"`
}

func (s *Set) toJSON() setJSON {
	j := setJSON{Version: s.version, AfterExpiry: s.afterExpiry, InsecureNoBackupPin: s.noBackup, Rules: s.Rules()}
	if !s.expires.IsZero() {
		j.Expires = s.expires.Format(time.RFC3339)
	}
	return j
}

func (j setJSON) config() (SetConfig, error) {
	cfg := SetConfig{Version: j.Version, Rules: j.Rules, AfterExpiry: j.AfterExpiry, InsecureNoBackupPin: j.InsecureNoBackupPin}
	if j.Expires != "" {
		t, err := time.Parse(time.RFC3339, j.Expires)
		if err != nil {
			return cfg, fmt.Errorf("%w: expires is not an RFC 3339 time", ErrInvalidSet)
		}
		cfg.Expires = t
	}
	return cfg, nil
}

// MarshalJSON returns the set's JSON form, the one [ParseSet] reads:
//
//	{"version": 3, "expires": "2027-01-01T00:00:00Z",
//	 "after_expiry": "keep-enforcing",
//	 "rules": [{"pattern": "api.example.com", "pins": ["sha256/...", "sha256/..."]}]}
func (s *Set) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.toJSON())
}

// ParseSet parses a set's JSON form and validates it as [NewSet] does.
// Unknown members and trailing data are refused. Callers reading from the
// network limit the input's size first.
func ParseSet(data []byte) (*Set, error) {
	var j setJSON
	if err := decodeStrict(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSet, err)
	}
	cfg, err := j.config()
	if err != nil {
		return nil, err
	}
	return NewSet(cfg)
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// members and trailing data. Its errors do not echo the input.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("JSON syntax error at offset %d", se.Offset)
		case errors.As(err, &te):
			return fmt.Errorf("JSON member %q has the wrong type", te.Field)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("empty or truncated JSON")
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
