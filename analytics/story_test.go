package analytics_test

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/analytics/analyticstest"
	"github.com/moatsec/moat/kv/kvtest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newRecorder(t *testing.T, cfg analytics.Config) *analytics.Recorder {
	t.Helper()
	if cfg.DeviceKey == nil {
		cfg.DeviceKey = testKey
	}
	rec, err := analytics.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	return rec
}

func TestStoryRecordsNoSecrets(t *testing.T) {
	t.Parallel()
	clock := kvtest.NewClock()
	capture := new(analyticstest.Capture)
	rec := newRecorder(t, analytics.Config{Clock: clock.Now, Sink: capture})
	story := analyticstest.Story(rec, clock.Advance, 6)
	require.NoError(t, rec.Close(context.Background())) // the sink has everything

	calls, sec := capture.Calls(), capture.Security()
	require.Len(t, calls, story.Calls)
	require.Len(t, sec, story.SecurityEvents)
	for _, c := range calls {
		require.NotContains(t, c.Route, "/admin/", "a raw path was recorded")
		require.NotEqual(t, "", c.Route)
	}

	lines := strings.Split(strings.TrimSpace(string(capture.Bytes())), "\n")
	require.Len(t, lines, story.Calls+story.SecurityEvents)
	for _, l := range lines {
		var ev struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		require.Contains(t, []string{"call", "security"}, ev.Type)
	}

	all, err := analyticstest.Everything(context.Background(), rec, capture)
	require.NoError(t, err)
	require.Greater(t, len(all), 10000)
	analyticstest.RequireNoSecrets(t, all, story.Secrets...)
	// The scrubbed reason is still recorded, with its secrets redacted.
	require.Contains(t, string(all), "wrong code=[redacted] for [jwt]")

	brief, err := rec.Brief(time.Time{}, time.Time{})
	require.NoError(t, err)
	require.EqualValues(t, story.Calls, brief.Calls)
	byChannel := map[string]int{}
	for _, c := range brief.ByChannel {
		byChannel[c.Label] = int(c.N)
	}
	require.Equal(t, story.ByChannel["phone"], byChannel["phone"])
	require.Equal(t, story.ByChannel["watch"], byChannel["watch"])
	require.Equal(t, story.ByChannel[""], byChannel["unknown"])
	require.EqualValues(t, story.Kinds[analytics.ChallengeIssued], brief.ChallengesIssued)
	require.EqualValues(t, story.Refusals, brief.Refusals)
	out := brief.String()
	require.Contains(t, out, "calls: ")
	require.Contains(t, out, "refusals: ")
	t.Logf("brief:\n%s", out)
}

// TestBrowserDashboard loads the dashboard of a server fed with the
// synthetic story in headless Chromium, checks that every chart rendered
// with data, and keeps a screenshot under the test's temp dir (or under
// $MOAT_BROWSER_SHOTS when set, to look at it).
func TestBrowserDashboard(t *testing.T) {
	chromium := analyticstest.Chromium(t)
	t.Parallel()
	clock := kvtest.NewClock()
	rec := newRecorder(t, analytics.Config{Clock: clock.Now})
	story := analyticstest.Story(rec, clock.Advance, 8)
	require.NoError(t, rec.Flush(context.Background()))

	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{Prefix: "/moat", Authorize: basicAuth("operator", "s3cret-operator")})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// Without credentials: refused.
	resp, err := http.Get(srv.URL + "/moat/analytics/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	dir := os.Getenv("MOAT_BROWSER_SHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	url := strings.Replace(srv.URL, "http://", "http://operator:s3cret-operator@", 1) + "/moat/analytics/?range=24h"
	page := analyticstest.Browse(t, chromium, url, dir)
	charts := analyticstest.RequireDashboard(t, page.DOM)
	require.Equal(t, story.Calls, charts["calls-by-app"].Total)
	require.Equal(t, story.Calls, charts["calls-by-channel"].Total)
	require.Equal(t, story.SecurityEvents, charts["security-over-time"].Total)
	require.Contains(t, page.DOM, "travel-watch")
	require.Contains(t, page.DOM, "POST /trips/{id}/pay")
	require.Contains(t, page.DOM, "version_refused")
	require.NotContains(t, page.DOM, "no data in this range")
	t.Logf("screenshot: %s", filepath.Join(dir, "dashboard.png"))
}

// basicAuth is a host's authorizer for the tests: HTTP Basic with one
// operator account.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="analytics"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recordingTB stands in for a test to check that the helpers fail when
// they should.
type recordingTB struct {
	testing.TB
	failures []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func TestRequireNoSecretsCatchesLeaks(t *testing.T) {
	t.Parallel()
	secret := "correct horse battery staple"
	for _, data := range []string{
		`{"reason":"correct horse battery staple"}`,
		`{"reason":"correct+horse+battery+staple"}`,
		`{"x":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}`,
		`{"t":"eyJhbGciOiJFUzI1NiJ9"}`,
		`abcdefghijk.lmnopqrstuv.wxyz0123456`,
	} {
		tb := &recordingTB{TB: t}
		analyticstest.RequireNoSecrets(tb, []byte(data), secret)
		require.NotEmpty(t, tb.failures, data)
		require.NotContains(t, strings.Join(tb.failures, " "), secret, "the report must not repeat the secret")
	}
	tb := &recordingTB{TB: t}
	analyticstest.RequireNoSecrets(tb, []byte(`{"reason":"wrong_password","device":"d_abc"}`), secret)
	require.Empty(t, tb.failures)

	dom := `<svg class="chart" data-chart="calls-by-app" data-total="0" data-marks="0"`
	tb = &recordingTB{TB: t}
	analyticstest.RequireDashboard(tb, dom)
	require.Len(t, tb.failures, len(analyticstest.DashboardCharts), "one empty chart, six missing")
}
