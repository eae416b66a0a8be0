package update

import (
	"strconv"
	"strings"
)

// AnyAppVersion, as a client's native app version, skips the manifest's
// app_versions check: for operator tools that fetch bundles outside an
// app. As a range it matches every native version.
const AnyAppVersion = "*"

// appVersion is a native app version: 1 to 4 dot-separated decimal numbers.
type appVersion [4]uint32

// parseAppVersion parses "1", "1.2", "1.2.3" or "1.2.3.4". Each number is
// 0 or has no leading zero and at most 9 digits; missing parts count as 0.
func parseAppVersion(s string) (appVersion, bool) {
	var v appVersion
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return v, false
	}
	for i, p := range parts {
		if p == "" || len(p) > 9 || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return v, false
			}
		}
		n, _ := strconv.ParseUint(p, 10, 32)
		v[i] = uint32(n)
	}
	return v, true
}

func (v appVersion) compare(w appVersion) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

type comparator struct {
	op string
	v  appVersion
}

// versionRange is a parsed app_versions value.
type versionRange []comparator

// parseRange parses a range: "*" (every version), or one or more
// comparators separated by single spaces, all of which must hold. A
// comparator is one of >=, >, <=, <, = followed by a version:
// ">=1.2 <2", "=3.0.1".
func parseRange(s string) (versionRange, bool) {
	if s == AnyAppVersion {
		return versionRange{}, true
	}
	if s == "" || len(s) > 256 {
		return nil, false
	}
	var r versionRange
	for _, f := range strings.Split(s, " ") {
		var op string
		for _, o := range []string{">=", "<=", ">", "<", "="} {
			if strings.HasPrefix(f, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, false
		}
		v, ok := parseAppVersion(f[len(op):])
		if !ok {
			return nil, false
		}
		r = append(r, comparator{op, v})
	}
	return r, true
}

// contains reports whether v satisfies every comparator.
func (r versionRange) contains(v appVersion) bool {
	for _, c := range r {
		d := v.compare(c.v)
		ok := false
		switch c.op {
		case ">=":
			ok = d >= 0
		case ">":
			ok = d > 0
		case "<=":
			ok = d <= 0
		case "<":
			ok = d < 0
		case "=":
			ok = d == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// rangeMatches reports whether the native version appVer (or AnyAppVersion)
// is inside the range text rng. An unparsable range or version never
// matches.
func rangeMatches(rng, appVer string) bool {
	r, ok := parseRange(rng)
	if !ok {
		return false
	}
	if appVer == AnyAppVersion {
		return true
	}
	v, ok := parseAppVersion(appVer)
	return ok && r.contains(v)
}
