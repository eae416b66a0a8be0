package device

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxVersionLen is the longest version string [ParseVersion] accepts.
const MaxVersionLen = 128

// Version is a semantic version (https://semver.org, 2.0.0) as apps report
// it: MAJOR.MINOR.PATCH with an optional pre-release after "-" and build
// metadata after "+".
//
// The rules moat applies, beyond semver 2.0.0:
//
//   - Two parts are accepted and mean a patch of zero: "1.10" is
//     "1.10.0", and "1.10-beta.1" is "1.10.0-beta.1". Many app stores show
//     two-part versions, and a two-part version compares exactly like its
//     three-part spelling.
//   - Anything else is malformed: one or four parts ("2", "1.2.3.4"), a
//     "v" prefix ("v1.10.0": semver says it is not a version, and one
//     accepted spelling per version keeps blocked lists exact), wildcards
//     ("1.x"), leading zeros ("1.02.0"), spaces, empty identifiers, or a
//     string longer than [MaxVersionLen].
//   - A malformed or empty version is below every minimum: a policy with
//     a minimum version applies its action to it.
//   - Precedence follows semver §11: a pre-release is below its release
//     ("1.10.0-beta.1" < "1.10.0", so it is below a minimum of 1.10.0),
//     and build metadata is ignored ("1.9.3+42" equals "1.9.3", so a
//     blocked "1.9.3" blocks it).
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release without its "-", or "".
	Pre string
	// Build is the build metadata without its "+", or "".
	Build string
}

// ParseVersion parses s under the rules of [Version]. A malformed version
// gives an error wrapping [ErrMalformedVersion].
func ParseVersion(s string) (Version, error) {
	v, ok := parseVersion(s)
	if !ok {
		if len(s) > MaxVersionLen {
			return Version{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformedVersion, MaxVersionLen)
		}
		return Version{}, fmt.Errorf("%w: %q is not MAJOR.MINOR[.PATCH][-PRE][+BUILD]", ErrMalformedVersion, s)
	}
	return v, nil
}

// parseVersion is ParseVersion without the error value; it does not
// allocate, so the request path can call it.
func parseVersion(s string) (Version, bool) {
	var v Version
	if s == "" || len(s) > MaxVersionLen {
		return v, false
	}
	var ok bool
	rest := s
	if v.Major, rest, ok = number(rest); !ok || rest == "" || rest[0] != '.' {
		return Version{}, false
	}
	if v.Minor, rest, ok = number(rest[1:]); !ok {
		return Version{}, false
	}
	if rest != "" && rest[0] == '.' {
		if v.Patch, rest, ok = number(rest[1:]); !ok {
			return Version{}, false
		}
	} // else two parts: patch 0
	if rest == "" {
		return v, true
	}
	if rest[0] == '-' {
		v.Pre = rest[1:]
		if i := strings.IndexByte(v.Pre, '+'); i >= 0 {
			v.Pre, rest = v.Pre[:i], v.Pre[i:]
		} else {
			rest = ""
		}
		if !validIdentifiers(v.Pre, true) {
			return Version{}, false
		}
	}
	if rest == "" {
		return v, true
	}
	if rest[0] != '+' {
		return Version{}, false
	}
	v.Build = rest[1:]
	if !validIdentifiers(v.Build, false) {
		return Version{}, false
	}
	return v, true
}

// number reads a numeric identifier (no leading zeros, fits in uint64) at
// the start of s.
func number(s string) (n uint64, rest string, ok bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, s, false // overflow
		}
		n = n*10 + d
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return 0, s, false
	}
	return n, s[i:], true
}

// validIdentifiers checks dot-separated identifiers of [0-9A-Za-z-];
// pre-release numeric identifiers must not have leading zeros.
func validIdentifiers(s string, pre bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// Compare returns -1, 0 or +1 as v is below, equal to (in precedence) or
// above w. Build metadata does not count.
func (v Version) Compare(w Version) int { return compareVersions(&v, &w) }

func compareVersions(v, w *Version) int {
	switch {
	case v.Major != w.Major:
		return cmpUint(v.Major, w.Major)
	case v.Minor != w.Minor:
		return cmpUint(v.Minor, w.Minor)
	case v.Patch != w.Patch:
		return cmpUint(v.Patch, w.Patch)
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := v.Pre, w.Pre
	for {
		x, ra, moreA := strings.Cut(a, ".")
		y, rb, moreB := strings.Cut(b, ".")
		if c := compareIdentifier(x, y); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// compareIdentifier orders pre-release identifiers: numeric ones
// numerically and below alphanumeric ones, which compare in ASCII order.
func compareIdentifier(x, y string) int {
	nx, ny := isNumeric(x), isNumeric(y)
	switch {
	case nx && ny:
		// No leading zeros: the longer number is the larger one.
		if len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	case nx:
		return -1
	case ny:
		return 1
	}
	return strings.Compare(x, y)
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String returns the canonical three-part spelling.
func (v Version) String() string {
	s := strconv.FormatUint(v.Major, 10) + "." + strconv.FormatUint(v.Minor, 10) + "." + strconv.FormatUint(v.Patch, 10)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}
