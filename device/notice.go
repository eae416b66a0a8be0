package device

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// NoticeHeader is the response header that carries a [Notice] on a call
// that succeeded. Its value is an RFC 9651 structured-field Dictionary:
//
//	Moat-App-Version-Notice: message=%"Une nouvelle version est disponible",
//	    download_url="https://apps.apple.com/app/id123", min_version="1.10.0"
//
// message is a Display String (UTF-8, percent-encoded outside printable
// ASCII) and is always present, possibly empty; download_url and
// min_version are Strings, present when the policy sets them. Clients read
// it with [ParseNotice].
const NoticeHeader = "Moat-App-Version-Notice"

// NoticeField is the member under which moat's JSON error bodies carry a
// notice (as {"message", "download_url", "min_version"}) when a later
// stage refuses a call that the version policy only notified about.
// [NoticeFrom] gives such stages the notice.
const NoticeField = "app_version_notice"

// maxNoticeHeaderLen bounds what ParseNotice reads.
const maxNoticeHeaderLen = 16 << 10

// Notice is the operator's message for a client whose version is below a
// notify-only minimum. It is given to each client once per policy change.
type Notice struct {
	Message     string `json:"message"`
	DownloadURL string `json:"download_url,omitempty"`
	MinVersion  string `json:"min_version,omitempty"`
}

// HeaderValue returns the notice encoded for [NoticeHeader].
func (n *Notice) HeaderValue() string {
	var b strings.Builder
	b.WriteString(`message=%"`)
	const hex = "0123456789abcdef"
	for i := 0; i < len(n.Message); i++ {
		c := n.Message[i]
		if c < 0x20 || c >= 0x7f || c == '%' || c == '"' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	for _, m := range []struct{ k, v string }{{"download_url", n.DownloadURL}, {"min_version", n.MinVersion}} {
		if m.v == "" {
			continue
		}
		b.WriteString(", " + m.k + `="`)
		for i := 0; i < len(m.v); i++ {
			c := m.v[i]
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c >= 0x20 && c < 0x7f:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// ParseNotice reads a [NoticeHeader] value. It accepts the RFC 9651
// Dictionary syntax (members may carry parameters, which are ignored, and
// unknown members are skipped) and requires a message member. Errors wrap
// [ErrMalformedNotice].
func ParseNotice(header string) (Notice, error) {
	if len(header) > maxNoticeHeaderLen {
		return Notice{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformedNotice, maxNoticeHeaderLen)
	}
	p := sfParser{s: header}
	var n Notice
	hasMessage := false
	p.skipSP()
	if p.done() {
		return Notice{}, fmt.Errorf("%w: empty", ErrMalformedNotice)
	}
	for {
		key, ok := p.key()
		if !ok {
			return Notice{}, p.fail("member key")
		}
		val, isString := "", false
		if p.eat('=') {
			if val, isString, ok = p.bareItem(); !ok {
				return Notice{}, p.fail("value of " + key)
			}
		}
		if !p.skipParameters() {
			return Notice{}, p.fail("parameters of " + key)
		}
		if isString {
			switch key {
			case "message":
				n.Message, hasMessage = val, true
			case "download_url":
				n.DownloadURL = val
			case "min_version":
				n.MinVersion = val
			}
		}
		p.skipOWS()
		if p.done() {
			break
		}
		if !p.eat(',') {
			return Notice{}, p.fail("','")
		}
		p.skipOWS()
		if p.done() {
			return Notice{}, p.fail("member after ','")
		}
	}
	if !hasMessage {
		return Notice{}, fmt.Errorf("%w: no message member", ErrMalformedNotice)
	}
	return n, nil
}

// sfParser reads the subset of RFC 9651 that notices use.
type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: expected %s at offset %d", ErrMalformedNotice, what, p.i)
}

func (p *sfParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key reads a member or parameter key.
func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.done() || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", false
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], true
}

// bareItem reads a String, Display String, Token, Integer, Decimal or
// Boolean. Only the two string kinds return isString.
func (p *sfParser) bareItem() (val string, isString, ok bool) {
	if p.done() {
		return "", false, false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		v, ok := p.str()
		return v, true, ok
	case c == '%':
		v, ok := p.displayString()
		return v, true, ok
	case c == '?':
		p.i++
		if p.eat('0') || p.eat('1') {
			return "", false, true
		}
		return "", false, false
	case c == '-' || c >= '0' && c <= '9':
		p.i++
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
			p.i++
		}
		return "", false, true
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		p.i++
		for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
			p.i++
		}
		return "", false, true
	}
	return "", false, false
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}

func (p *sfParser) str() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), true
		case c == '\\':
			if p.done() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c < 0x20 || c >= 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func (p *sfParser) displayString() (string, bool) {
	p.i++ // '%'
	if !p.eat('"') {
		return "", false
	}
	var b []byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", false
			}
			return string(b), true
		case c == '%':
			if p.i+2 > len(p.s) {
				return "", false
			}
			hi, ok1 := lowerHex(p.s[p.i])
			lo, ok2 := lowerHex(p.s[p.i+1])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			p.i += 2
		case c < 0x20 || c >= 0x7f:
			return "", false
		default:
			b = append(b, c)
		}
	}
	return "", false
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// skipParameters reads and ignores ";key[=value]" parameters.
func (p *sfParser) skipParameters() bool {
	for p.eat(';') {
		p.skipSP()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.eat('=') {
			if _, _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

type noticeCtxKey struct{}

// NoticeFrom returns the notice [Control.Middleware] attached to the
// request context, so that later stages can add it to the JSON error
// bodies they write (under [NoticeField]).
func NoticeFrom(ctx context.Context) (*Notice, bool) {
	n, ok := ctx.Value(noticeCtxKey{}).(*Notice)
	return n, ok && n != nil
}

// ContextWithNotice returns a copy of ctx carrying n.
func ContextWithNotice(ctx context.Context, n *Notice) context.Context {
	return context.WithValue(ctx, noticeCtxKey{}, n)
}
