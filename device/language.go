package device

import "strings"

// Limits on the Accept-Language header: only its first
// maxAcceptLanguageLen bytes and maxLanguageRanges ranges are considered.
const (
	maxAcceptLanguageLen = 1024
	maxLanguageRanges    = 16
	maxLanguageTagLen    = 35
)

type languageRange struct {
	tag string
	q   int // 0..1000
}

// chooseText returns the translation that the Accept-Language header asks
// for, or def. Ranges are tried in order of their q value (ties keep the
// header's order); each is looked up as in RFC 4647 §3.4: the full tag,
// then shorter prefixes ("fr-CA" then "fr"). "*" and unknown languages
// give def. Keys of translations must be lower case (see compilePolicy).
// Malformed ranges are skipped; the function never fails.
func chooseText(acceptLanguage, def string, translations map[string]string) string {
	if len(translations) == 0 || acceptLanguage == "" {
		return def
	}
	if len(acceptLanguage) > maxAcceptLanguageLen {
		acceptLanguage = acceptLanguage[:maxAcceptLanguageLen]
	}
	var ranges [maxLanguageRanges]languageRange
	n := 0
	for item := range strings.SplitSeq(acceptLanguage, ",") {
		r, ok := parseLanguageRange(item)
		if !ok || r.q == 0 {
			continue
		}
		// Insert after every range with q >= r.q (stable).
		i := n
		for i > 0 && ranges[i-1].q < r.q {
			i--
		}
		if i == maxLanguageRanges {
			continue
		}
		if n < maxLanguageRanges {
			n++
		}
		copy(ranges[i+1:n], ranges[i:n-1])
		ranges[i] = r
	}
	var buf [maxLanguageTagLen]byte
	for _, r := range ranges[:n] {
		if r.tag == "*" {
			return def
		}
		b := buf[:len(r.tag)]
		for i := 0; i < len(r.tag); i++ {
			c := r.tag[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		for len(b) > 0 {
			if t, ok := translations[string(b)]; ok {
				return t
			}
			cut := strings.LastIndexByte(string(b), '-')
			if cut < 0 {
				break
			}
			b = b[:cut]
			// Drop a singleton left at the end ("zh-x" from "zh-x-foo").
			if len(b) >= 2 && b[len(b)-2] == '-' {
				b = b[:len(b)-2]
			}
		}
	}
	return def
}

// parseLanguageRange reads one "tag;q=0.8" item.
func parseLanguageRange(item string) (languageRange, bool) {
	tag, params, _ := strings.Cut(item, ";")
	tag = strings.TrimSpace(tag)
	if tag != "*" && !validLanguageTag(tag) {
		return languageRange{}, false
	}
	r := languageRange{tag: tag, q: 1000}
	for p := range strings.SplitSeq(params, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue // other parameters are not defined; ignore them
		}
		q, ok := parseQValue(strings.TrimSpace(v))
		if !ok {
			return languageRange{}, false
		}
		r.q = q
	}
	return r, true
}

// parseQValue reads an RFC 9110 §12.4.2 qvalue as thousandths.
func parseQValue(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// validLanguageTag accepts the shape of a BCP 47 tag: 1 to 35 letters,
// digits and hyphens, subtags of 1 to 8 characters.
func validLanguageTag(tag string) bool {
	if tag == "" || len(tag) > maxLanguageTagLen {
		return false
	}
	for sub := range strings.SplitSeq(tag, "-") {
		if sub == "" || len(sub) > 8 {
			return false
		}
		for i := 0; i < len(sub); i++ {
			c := sub[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}
