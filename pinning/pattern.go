package pinning

import (
	"fmt"
	"net/netip"
	"strings"
)

// patternKind says how a pattern's leftmost part matches.
type patternKind uint8

const (
	exactHost patternKind = iota // "example.com": that host only
	oneLabel                     // "*.example.com": exactly one more label
	anyLabels                    // "**.example.com": zero or more labels
)

// pattern is a parsed host pattern. OkHttp's CertificatePinner rules:
// matching is case-insensitive, ignores a trailing dot, and happens on
// label boundaries only.
type pattern struct {
	kind patternKind
	base string // the fixed part, normalized by normalizeHost
}

// parsePattern parses a host pattern: an exact host name or IP address,
// "*." followed by a host name (one label), or "**." followed by a host
// name (zero or more labels). Wildcards whose fixed part is a public
// suffix are refused with ErrPublicSuffix.
func parsePattern(s string) (pattern, error) {
	var p pattern
	rest := s
	switch {
	case strings.HasPrefix(rest, "**."):
		p.kind, rest = anyLabels, rest[3:]
	case strings.HasPrefix(rest, "*."):
		p.kind, rest = oneLabel, rest[2:]
	}
	if strings.Contains(rest, "*") {
		return p, fmt.Errorf("%w %q: a wildcard may only be the whole leftmost label, as *. or **.", ErrInvalidPattern, s)
	}
	base, isIP, ok := normalizeHost(rest)
	if !ok {
		return p, fmt.Errorf("%w %q: not a host name or IP address", ErrInvalidPattern, s)
	}
	p.base = base
	if p.kind == exactHost {
		return p, nil
	}
	if isIP {
		return p, fmt.Errorf("%w %q: a wildcard cannot precede an IP address", ErrInvalidPattern, s)
	}
	if isPublicSuffix(base) {
		return p, fmt.Errorf("%w: %q", ErrPublicSuffix, s)
	}
	return p, nil
}

// String returns the pattern in its normalized text form.
func (p pattern) String() string {
	switch p.kind {
	case oneLabel:
		return "*." + p.base
	case anyLabels:
		return "**." + p.base
	}
	return p.base
}

// match reports whether the normalized host h matches p.
func (p pattern) match(h string) bool {
	if p.kind == exactHost {
		return h == p.base
	}
	if h == p.base {
		return p.kind == anyLabels
	}
	prefix, ok := strings.CutSuffix(h, p.base)
	if !ok || len(prefix) < 2 || prefix[len(prefix)-1] != '.' {
		return false
	}
	return p.kind == anyLabels || !strings.Contains(prefix[:len(prefix)-1], ".")
}

// maxHostLen is the longest host name DNS allows (RFC 1035 §2.3.4, in
// text form without the trailing dot).
const maxHostLen = 253

// normalizeHost returns the form of h that patterns match against: an IP
// address in its canonical text form, or a host name in lower case with
// one trailing dot removed. It reports whether h is an IP address, and
// ok=false for anything that is neither an IP address nor a host name of
// letters, digits, hyphens and underscores (use the A-label "xn--" form of
// an internationalized name).
func normalizeHost(h string) (norm string, isIP, ok bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > maxHostLen || h[len(h)-1] == '.' {
		return "", false, false
	}
	if strings.ContainsAny(h, ":") || isDigitsAndDots(h) {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
		if err != nil || a.Zone() != "" {
			return "", false, false
		}
		return a.Unmap().String(), true, true
	}
	label, upper := 0, false
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if label == 0 {
				return "", false, false
			}
			label = 0
			continue
		default:
			return "", false, false
		}
		label++
		if label > 63 {
			return "", false, false
		}
	}
	if upper {
		h = strings.ToLower(h)
	}
	return h, false, true
}

// isDigitsAndDots reports whether s looks like an IPv4 address, so that
// "1.2.3.999" is refused rather than taken as a host name.
func isDigitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// isPublicSuffix reports whether the normalized host name base is a public
// suffix as far as moat knows without the Public Suffix List: any single
// label ("com", "co", "localhost"), or one of the multi-label suffixes in
// multiLabelSuffixes.
func isPublicSuffix(base string) bool {
	if !strings.Contains(base, ".") {
		return true
	}
	_, ok := multiLabelSuffixes[base]
	return ok
}

// multiLabelSuffixes is a small, deliberately incomplete list of common
// public suffixes of more than one label, from the Public Suffix List
// (https://publicsuffix.org/): second-level registry domains of large
// country-code TLDs and a few widely used hosting platforms. A wildcard
// over any of them is refused. It is not the full list: see the package
// doc's "Limits".
var multiLabelSuffixes = func() map[string]struct{} {
	list := []string{
		// United Kingdom
		"co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "nhs.uk", "sch.uk",
		// Australia, New Zealand
		"com.au", "net.au", "org.au", "edu.au", "gov.au", "id.au", "asn.au",
		"co.nz", "net.nz", "org.nz", "ac.nz", "govt.nz", "geek.nz",
		// Japan, Korea, China, Hong Kong, Taiwan, Singapore
		"co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "gr.jp", "ed.jp", "lg.jp",
		"co.kr", "or.kr", "ne.kr", "go.kr", "ac.kr",
		"com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
		"com.hk", "net.hk", "org.hk", "gov.hk", "edu.hk",
		"com.tw", "net.tw", "org.tw", "gov.tw", "edu.tw",
		"com.sg", "net.sg", "org.sg", "gov.sg", "edu.sg",
		// South and South-East Asia
		"co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "gov.in", "ac.in", "edu.in",
		"co.id", "or.id", "ac.id", "go.id", "web.id",
		"com.my", "net.my", "org.my", "gov.my", "edu.my",
		"com.ph", "net.ph", "org.ph", "gov.ph", "edu.ph",
		"com.vn", "net.vn", "org.vn", "gov.vn", "edu.vn",
		"co.th", "in.th", "or.th", "ac.th", "go.th",
		"com.pk", "net.pk", "org.pk", "gov.pk", "edu.pk",
		// Americas
		"com.br", "net.br", "org.br", "gov.br", "edu.br",
		"com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx",
		"com.ar", "net.ar", "org.ar", "gob.ar", "edu.ar",
		"com.co", "net.co", "org.co", "gov.co", "edu.co",
		"com.pe", "net.pe", "org.pe", "gob.pe", "edu.pe",
		"co.ve", "com.ve", "gob.cl",
		// Europe, Middle East, Africa
		"com.tr", "net.tr", "org.tr", "gov.tr", "edu.tr",
		"co.il", "org.il", "net.il", "ac.il", "gov.il",
		"com.sa", "net.sa", "org.sa", "gov.sa", "edu.sa",
		"co.za", "org.za", "net.za", "gov.za", "ac.za", "web.za",
		"com.eg", "net.eg", "org.eg", "gov.eg", "edu.eg",
		"com.ng", "net.ng", "org.ng", "gov.ng", "edu.ng",
		"co.ke", "or.ke", "ac.ke", "go.ke",
		"com.ua", "net.ua", "org.ua", "gov.ua", "edu.ua",
		"com.pl", "net.pl", "org.pl", "gov.pl", "edu.pl",
		"com.ru", "net.ru", "org.ru", "msk.ru", "spb.ru",
		"co.at", "or.at", "ac.at", "gv.at",
		"com.es", "nom.es", "org.es", "gob.es", "edu.es",
		"com.gr", "net.gr", "org.gr", "gov.gr", "edu.gr",
		"com.pt", "org.pt", "gov.pt", "edu.pt",
		// Hosting platforms (the PSL's private section)
		"github.io", "gitlab.io", "herokuapp.com", "appspot.com", "blogspot.com",
		"cloudfront.net", "azurewebsites.net", "cloudapp.net", "firebaseapp.com", "web.app",
		"netlify.app", "vercel.app", "pages.dev", "workers.dev", "fly.dev", "onrender.com",
		"s3.amazonaws.com", "elasticbeanstalk.com", "ngrok.io", "ngrok-free.app",
	}
	m := make(map[string]struct{}, len(list))
	for _, s := range list {
		m[s] = struct{}{}
	}
	return m
}()
