package analytics

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{7,}|[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)

// FuzzScrub checks that Scrub never panics, always returns valid UTF-8
// without control characters, is idempotent, and leaves nothing shaped
// like a JWT.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		"travel", "GET /trips/{id}", "2.4.1", sampleJWT, "Bearer " + sampleJWT, "?access_token=abc&code=1",
		"password=x;pin=1", "e30.e30.", "eyJhbGciOiJub25lIn0", "caf\xe9\x00", "api.travel.example",
		"a=b=c", "token==", "=", "eyJ", "....", "Basic ", "dpop  x", sampleJWT[:40] + "\n" + sampleJWT[40:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Scrub(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q: %q", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q from %q", out, s)
			}
		}
		if again := Scrub(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
		}
		if m := jwtShape.FindString(out); m != "" && jsonWordLike(m) {
			t.Fatalf("JWT-shaped %q left in %q (from %q)", m, out, s)
		}
		if c := cleanLabel(s); len(c) > MaxLabelLen || !utf8.ValidString(c) {
			t.Fatalf("cleanLabel(%q) = %q", s, c)
		}
	})
}

// jsonWordLike reports whether a regexp match is one Scrub promises to
// remove: a word holding "eyJ", or dotted segments one of which decodes
// like a JSON object.
func jsonWordLike(m string) bool {
	if strings.Contains(m, "eyJ") {
		return true
	}
	for seg := range strings.SplitSeq(m, ".") {
		if jsonObjectStart(seg) {
			return true
		}
	}
	return false
}

// FuzzParseQuery feeds query strings to the query API's parser and, when
// they parse, to the queries themselves: nothing panics, every refusal is
// an ErrInvalidQuery, and no refusal echoes a JWT.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "since=-24h&until=now&group_by=app,platform,channel&app=travel", "since=yesterday",
		"group_by=planet", "since=1700000000&resolution=minute", "limit=5&status=5xx",
		"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "group_by=,", "app=a&app=b",
		"since=-7d&resolution=hour", "since=-99999999d", "until=99999999999999999999", "%zz",
		"kind=device_refused&group_by=kind,reason", "since=-1ns", "limit=-1", "access_token=" + sampleJWT,
	} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec, err := New(Config{DeviceKey: benchKey, Clock: func() time.Time { return now }, DrainInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, dims := range [][]string{CallDims, SecurityDims} {
			q, err := parseQuery(values, dims, now)
			if err == nil {
				if dims[0] == "app" {
					_, err = rec.Summary(q)
				} else {
					_, err = rec.SecurityReport(q)
				}
			}
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("%q: %v is not ErrInvalidQuery", raw, err)
			}
			if m := jwtShape.FindString(err.Error()); m != "" && jsonWordLike(m) {
				t.Fatalf("%q: the error echoes a JWT: %v", raw, err)
			}
		}
	})
}
