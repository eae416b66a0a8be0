package analytics

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"unicode/utf8"
)

// MaxLabelLen is the longest label (app id, version, route, check name,
// reason...) the recorder keeps, in bytes. Longer labels are cut at a rune
// boundary after scrubbing.
const MaxLabelLen = 128

// Redaction markers that [Scrub] puts in place of what it removes.
const (
	RedactedJWT   = "[jwt]"
	RedactedValue = "[redacted]"
)

// secretWords are the parameter-name fragments whose values Scrub redacts.
var secretWords = []string{
	"token", "code", "pass", "pwd", "secret", "key", "pin", "otp", "session",
	"auth", "assertion", "signature", "sig", "credential", "cookie", "dpop",
	"jwt", "nonce",
}

// authSchemes are the words after which Scrub redacts the next word
// ("Bearer abc" -> "Bearer [redacted]").
var authSchemes = []string{"bearer", "dpop", "basic"}

// Scrub returns s with what looks like a secret removed, so that it can be
// recorded: every string the recorder keeps (caller labels, route
// patterns, check names, reason codes) passes through it.
//
//   - A JWT-shaped word (dot-separated base64url segments, one of which
//     decodes to the start of a JSON object, as every JWS and JWE header
//     does; or a word holding "eyJ" followed by 7 or more base64url
//     characters) becomes [RedactedJWT].
//   - The value of a name=value pair whose name contains token, code, pass,
//     pwd, secret, key, pin, otp, session, auth, assertion, signature, sig,
//     credential, cookie, dpop, jwt or nonce (in any case) becomes
//     [RedactedValue]: "?access_token=abc&x=1" -> "?access_token=[redacted]&x=1".
//   - The word after "Bearer ", "DPoP " or "Basic " becomes [RedactedValue].
//   - Control characters and invalid UTF-8 become "?".
//
// Scrub errs on the side of removing too much. It cannot recognise a bare
// secret with no telling shape (a password passed as a reason code): hooks
// must pass codes, never user input. When s needs no change, Scrub returns
// it without allocating.
func Scrub(s string) string {
	var sc scrubber
	return sc.run(s)
}

type scrubber struct {
	src  string
	buf  []byte
	last int // s[:last] is already in buf (when buf != nil)
}

// replace puts repl in place of src[i:j].
func (sc *scrubber) replace(i, j int, repl string) {
	if sc.buf == nil {
		sc.buf = make([]byte, 0, len(sc.src)+len(repl))
	}
	sc.buf = append(sc.buf, sc.src[sc.last:i]...)
	sc.buf = append(sc.buf, repl...)
	sc.last = j
}

func (sc *scrubber) run(s string) string {
	sc.src = s
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isWordByte(c):
			j, dotted := i, false
			for j < len(s) && isWordByte(s[j]) {
				dotted = dotted || s[j] == '.'
				j++
			}
			word := s[i:j]
			if (dotted || len(word) >= 10) && looksJWT(word) {
				sc.replace(i, j, RedactedJWT)
				i = j
				continue
			}
			if j < len(s) && (s[j] == '=' || s[j] == ' ') {
				var secret bool
				if s[j] == '=' {
					secret = secretName(word)
				} else {
					secret = authScheme(word)
				}
				k := j + 1
				for k < len(s) && !isValueEnd(s[k]) {
					k++
				}
				if secret && k > j+1 {
					sc.replace(j+1, k, RedactedValue)
					i = k
					continue
				}
			}
			i = j
		case c < 0x20 || c == 0x7f:
			sc.replace(i, i+1, "?")
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				sc.replace(i, i+1, "?")
				i++
				continue
			}
			i += n
		default:
			i++
		}
	}
	if sc.buf == nil {
		return s
	}
	sc.buf = append(sc.buf, s[sc.last:]...)
	return string(sc.buf)
}

// isWordByte reports whether c may appear in a base64url word, a dotted
// token or a parameter name.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '~' || c == '%' || c == '+' || c == '/'
}

// isValueEnd reports whether c ends a parameter value or credential.
// Control characters do not: they are redacted with the value, so that a
// second pass finds nothing left to redact.
func isValueEnd(c byte) bool {
	switch c {
	case '&', ';', ',', ' ', '"', '\'', '#', '<', '>', '\\':
		return true
	}
	return false
}

// looksJWT reports whether word is shaped like a JWS or JWE (or a piece of
// one): a dotted word with a base64url segment that decodes to the start
// of a JSON object, or a segment holding "eyJ" (the encoding of `{"`)
// followed by 7 or more base64url characters.
func looksJWT(word string) bool {
	dotted := strings.IndexByte(word, '.') >= 0
	for i := 0; i < len(word); {
		if !isBase64URL(word[i]) {
			i++
			continue
		}
		j := i
		for j < len(word) && isBase64URL(word[j]) {
			j++
		}
		seg := word[i:j]
		if k := strings.Index(seg, "eyJ"); k >= 0 && len(seg)-k >= 10 || dotted && jsonObjectStart(seg) {
			return true
		}
		i = j
	}
	return false
}

func isBase64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// jsonObjectStart reports whether seg is base64url whose decoding starts
// like a JSON object: '{', then after optional white space '"' or '}'.
func jsonObjectStart(seg string) bool {
	if len(seg) < 3 {
		return false
	}
	if len(seg) > 8 {
		seg = seg[:8]
	}
	if len(seg)%4 == 1 {
		seg = seg[:len(seg)-1]
	}
	var out [6]byte
	n, err := base64.RawURLEncoding.Decode(out[:], []byte(seg))
	if err != nil {
		return false
	}
	brace := false
	for _, b := range out[:n] {
		switch {
		case b == ' ' || b == '\t' || b == '\r' || b == '\n':
		case !brace && b == '{':
			brace = true
		case brace && (b == '"' || b == '}'):
			return true
		default:
			return false
		}
	}
	return false
}

func secretName(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

func authScheme(word string) bool {
	for _, s := range authSchemes {
		if strings.EqualFold(word, s) {
			return true
		}
	}
	return false
}

// cleanLabel scrubs s and cuts it to MaxLabelLen bytes at a rune boundary.
func cleanLabel(s string) string {
	s = Scrub(s)
	if len(s) <= MaxLabelLen {
		return s
	}
	cut := MaxLabelLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// pseudonymizer turns device ids into keyed pseudonyms. It is used by the
// recorder's single drain at a time, so it needs no lock.
type pseudonymizer struct {
	mac   hash.Hash
	cache map[string]string
}

const pseudonymCacheSize = 4096

func newPseudonymizer(key []byte) *pseudonymizer {
	return &pseudonymizer{mac: hmac.New(sha256.New, key), cache: make(map[string]string)}
}

// device returns the pseudonym of id, or "" for an empty id.
func (p *pseudonymizer) device(id string) string {
	if id == "" {
		return ""
	}
	if v, ok := p.cache[id]; ok {
		return v
	}
	p.mac.Reset()
	p.mac.Write([]byte("moat/analytics device\x00"))
	p.mac.Write([]byte(id))
	var sum [sha256.Size]byte
	var out [2 + 22]byte
	copy(out[:], "d_")
	base64.RawURLEncoding.Encode(out[2:], p.mac.Sum(sum[:0])[:16])
	v := string(out[:])
	if len(p.cache) >= pseudonymCacheSize {
		clear(p.cache)
	}
	p.cache[id] = v
	return v
}

// source turns a caller into its recorded form.
func (p *pseudonymizer) source(c *Caller) Source {
	return Source{
		AppID:       cleanLabel(c.AppID),
		AppVersion:  cleanLabel(c.AppVersion),
		Platform:    cleanLabel(c.Platform),
		Channel:     cleanLabel(c.Channel),
		DeviceModel: cleanLabel(c.DeviceModel),
		OSVersion:   cleanLabel(c.OSVersion),
		Device:      p.device(c.DeviceID),
	}
}
