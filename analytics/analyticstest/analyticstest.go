// Package analyticstest helps test code that records analytics: a sink
// that keeps what it is given, a way to collect every byte the recorder
// would ever show anyone and to search it for secrets, a synthetic story of
// traffic, and a headless-Chromium check of the dashboard.
//
// The end-to-end "no secrets in anything recorded" test of an application
// looks like this:
//
//	capture := new(analyticstest.Capture)
//	rec, _ := analytics.New(analytics.Config{DeviceKey: key, Sink: capture, ...})
//	// ... run the whole story through the server, collecting every secret it used ...
//	all, err := analyticstest.Everything(ctx, rec, capture)
//	require.NoError(t, err)
//	analyticstest.RequireNoSecrets(t, all, secrets...)
package analyticstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/moatsec/moat/analytics"
)

// Capture is an [analytics.Sink] that keeps every event it is given, and
// the JSON lines a [analytics.JSONLines] sink would have written.
type Capture struct {
	mu       sync.Mutex
	calls    []analytics.Call
	security []analytics.Security
	lines    bytes.Buffer
	jsonl    *analytics.JSONLines
}

var _ analytics.Sink = (*Capture)(nil)

// Export keeps b.
func (c *Capture) Export(ctx context.Context, b *analytics.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jsonl == nil {
		c.jsonl = analytics.NewJSONLines(&c.lines)
	}
	c.calls = append(c.calls, b.Calls...)
	c.security = append(c.security, b.Security...)
	return c.jsonl.Export(ctx, b)
}

// Calls returns a copy of the calls exported so far.
func (c *Capture) Calls() []analytics.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]analytics.Call(nil), c.calls...)
}

// Security returns a copy of the security outcomes exported so far.
func (c *Capture) Security() []analytics.Security {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]analytics.Security(nil), c.security...)
}

// Bytes returns the JSON lines of everything exported so far.
func (c *Capture) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.lines.Bytes())
}

// Everything flushes rec and returns every byte it would show anyone:
// the events capture received (nil: none), the recorder's aggregates
// ([analytics.Recorder.DumpState]), the query API's answers grouped by each
// dimension and by all of them, and the dashboard page for every range. The
// sink runs asynchronously: close the recorder first when capture's
// contents must be complete.
func Everything(ctx context.Context, rec *analytics.Recorder, capture *Capture) ([]byte, error) {
	if err := rec.Flush(ctx); err != nil {
		return nil, err
	}
	var all bytes.Buffer
	if capture != nil {
		all.Write(capture.Bytes())
	}
	if err := rec.DumpState(&all); err != nil {
		return nil, err
	}
	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{
		Authorize: func(next http.Handler) http.Handler { return next }, // test only: reads its own recorder
	})
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, res := range []string{"minute", "hour"} {
		since := "-48h"
		if res == "minute" {
			since = "-6h"
		}
		q := "since=" + since + "&resolution=" + res + "&limit=1000"
		paths = append(paths,
			"/analytics/api/summary?"+q+"&group_by="+strings.Join(analytics.CallDims, ","),
			"/analytics/api/security?"+q+"&group_by="+strings.Join(analytics.SecurityDims, ","))
		for _, d := range analytics.CallDims {
			paths = append(paths, "/analytics/api/summary?"+q+"&group_by="+d)
		}
		for _, d := range analytics.SecurityDims {
			paths = append(paths, "/analytics/api/security?"+q+"&group_by="+d)
		}
	}
	for _, r := range []string{"1h", "6h", "24h", "48h"} {
		paths = append(paths, "/analytics/?range="+r)
	}
	for _, p := range paths {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, p, nil))
		if w.Code != http.StatusOK {
			return nil, fmt.Errorf("analyticstest: GET %s: %d %s", p, w.Code, w.Body.String())
		}
		all.Write(w.Body.Bytes())
	}
	return all.Bytes(), nil
}

var jwtShapes = []*regexp.Regexp{
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{7,}`),
	regexp.MustCompile(`[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`),
}

// RequireNoSecrets fails t when data contains any of secrets (as is,
// percent-encoded, or in standard or URL-safe base64) or anything shaped
// like a JWT. Secrets shorter than 6 bytes are refused: they would match by
// chance.
func RequireNoSecrets(t testing.TB, data []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 6 {
			t.Fatalf("analyticstest: secret %q is too short to search for reliably", s)
		}
		for _, form := range []string{
			s, url.QueryEscape(s), url.PathEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
		} {
			if i := bytes.Index(data, []byte(form)); i >= 0 {
				t.Errorf("analyticstest: a secret was recorded (%d bytes, starting %q) at offset %d: ...%s...",
					len(s), s[:3], i, excerpt(data, i, len(form)))
			}
		}
	}
	for _, re := range jwtShapes {
		if loc := re.FindIndex(data); loc != nil {
			t.Errorf("analyticstest: a JWT-shaped string was recorded at offset %d: ...%s...", loc[0], excerpt(data, loc[0], loc[1]-loc[0]))
		}
	}
}

// excerpt shows the context of a find with the find itself masked.
func excerpt(data []byte, i, n int) string {
	lo, hi := max(i-40, 0), min(i+n+40, len(data))
	return string(data[lo:i]) + "<secret>" + string(data[i+n:hi])
}
