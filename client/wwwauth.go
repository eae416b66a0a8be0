package client

import "strings"

// Challenge is one challenge of a WWW-Authenticate header (RFC 9110
// §11.6.1): a scheme and its auth-params (names lower-cased).
type Challenge struct {
	Scheme string
	Params map[string]string
}

// ParseWWWAuthenticate parses the values of WWW-Authenticate headers into
// challenges. It is lenient about white space and never fails: what it
// cannot read it skips.
func ParseWWWAuthenticate(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		out = append(out, parseChallenges(v)...)
	}
	return out
}

func parseChallenges(s string) []Challenge {
	var out []Challenge
	var cur *Challenge
	i := 0
	for i < len(s) {
		i = skipSpaceComma(s, i)
		if i >= len(s) {
			break
		}
		tok, j := readToken(s, i)
		if tok == "" { // not a token: skip one byte
			i++
			continue
		}
		k := skipSpace(s, j)
		if k < len(s) && s[k] == '=' && cur != nil {
			// auth-param
			k = skipSpace(s, k+1)
			var val string
			if k < len(s) && s[k] == '"' {
				val, k = readQuoted(s, k)
			} else {
				val, k = readToken68(s, k)
			}
			cur.Params[strings.ToLower(tok)] = val
			i = k
			continue
		}
		if k < len(s) && s[k] == '=' && cur == nil {
			i = k + 1
			continue
		}
		// a new scheme
		out = append(out, Challenge{Scheme: tok, Params: map[string]string{}})
		cur = &out[len(out)-1]
		i = j
	}
	return out
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func skipSpaceComma(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	return i
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func readToken(s string, i int) (string, int) {
	j := i
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	return s[i:j], j
}

// readToken68 reads an unquoted parameter value up to a comma or space.
func readToken68(s string, i int) (string, int) {
	j := i
	for j < len(s) && s[j] != ',' && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[i:j], j
}

// readQuoted reads a quoted-string starting at s[i] == '"'.
func readQuoted(s string, i int) (string, int) {
	var b strings.Builder
	j := i + 1
	for j < len(s) {
		c := s[j]
		switch {
		case c == '\\' && j+1 < len(s):
			b.WriteByte(s[j+1])
			j += 2
		case c == '"':
			return b.String(), j + 1
		default:
			b.WriteByte(c)
			j++
		}
	}
	return b.String(), j
}
