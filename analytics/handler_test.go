package analytics_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/analytics/analyticstest"
	"github.com/moatsec/moat/kv/kvtest"
)

func allowAll(next http.Handler) http.Handler { return next } // tests only

// storyHandler returns the analytics handler of a recorder fed with the
// synthetic story.
func storyHandler(t *testing.T, prefix string) (http.Handler, analyticstest.StoryResult) {
	t.Helper()
	clock := kvtest.NewClock()
	rec := newRecorder(t, analytics.Config{Clock: clock.Now})
	story := analyticstest.Story(rec, clock.Advance, 3)
	require.NoError(t, rec.Flush(context.Background()))
	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: allowAll, Prefix: prefix})
	require.NoError(t, err)
	return h, story
}

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	return w
}

func TestNewHandlerRequiresAnAuthorizer(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, analytics.Config{})
	_, err := analytics.NewHandler(rec, analytics.HandlerConfig{})
	require.ErrorIs(t, err, analytics.ErrNoAuthorizer)
	_, err = analytics.NewHandler(nil, analytics.HandlerConfig{Authorize: allowAll})
	require.ErrorIs(t, err, analytics.ErrInvalidConfig)
	_, err = analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: func(http.Handler) http.Handler { return nil }})
	require.ErrorIs(t, err, analytics.ErrInvalidConfig)
	for _, p := range []string{"moat", "/moat/", "/{x}"} {
		_, err = analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: allowAll, Prefix: p})
		require.ErrorIs(t, err, analytics.ErrInvalidConfig, p)
	}
}

func TestAuthorizerGuardsEveryEndpoint(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, analytics.Config{})
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	}
	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: deny})
	require.NoError(t, err)
	for _, p := range []string{"/analytics/", "/analytics/api/summary", "/analytics/api/security", "/analytics/nope"} {
		w := get(h, p)
		require.Equal(t, http.StatusForbidden, w.Code, p)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}
}

func TestQueryAPIRejectsBadParameters(t *testing.T) {
	t.Parallel()
	h, _ := storyHandler(t, "")
	for _, tc := range []struct{ query, want string }{
		{"since=yesterday", `since "yesterday" is not a time`},
		{"until=2026-13-01T00:00:00Z", `until "2026-13-01T00:00:00Z" is not a time`},
		{"since=-3x", `since "-3x" is not a duration`},
		{"since=-0h", `is not a duration`},
		{"since=99999999999999", "is out of range"},
		{"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since (2026-01-02T00:00:00Z) must be before until"},
		{"group_by=app,planet", `unknown group_by dimension "planet"; known: app, version, platform, channel, route, method, status`},
		{"group_by=app,app", `group_by dimension "app" given twice`},
		{"groupby=app", `unknown parameter "groupby"`},
		{"app=a&app=b", `parameter "app" given 2 times`},
		{"limit=ten", `limit "ten" is not a number`},
		{"limit=0", "limit 0 is not within 1..1000"},
		{"resolution=second", `resolution "second" is not auto, minute or hour`},
		{"since=-60d&resolution=hour", "more than 1000"},
		{"group_by=kind", `unknown group_by dimension "kind"`},
		{"access_token=" + sampleJWT, `unknown parameter "access_token"`},
	} {
		w := get(h, "/analytics/api/summary?"+tc.query)
		require.Equal(t, http.StatusBadRequest, w.Code, tc.query)
		var body struct{ Error, ErrorDescription string }
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &struct {
			E *string `json:"error"`
			D *string `json:"error_description"`
		}{&body.Error, &body.ErrorDescription}))
		require.Equal(t, "invalid_request", body.Error)
		require.Contains(t, body.ErrorDescription, tc.want, tc.query)
		require.NotContains(t, w.Body.String(), sampleJWT[:20])
	}
	w := get(h, "/analytics/api/security?group_by=route")
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `unknown group_by dimension \"route\"; known: kind, name, reason`)
	require.Equal(t, http.StatusNotFound, get(h, "/analytics/api/nope").Code)
}

func TestQueryAPISummary(t *testing.T) {
	t.Parallel()
	h, story := storyHandler(t, "/moat")
	w := get(h, "/moat/analytics/api/summary?since=-24h&group_by=app,platform,channel&app=travel")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var s analytics.Summary
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
	require.Equal(t, analytics.Hour, s.Resolution)
	require.Equal(t, map[string]string{"app": "travel"}, s.Filter)
	require.Equal(t, []string{"app", "platform", "channel"}, s.GroupBy)
	require.Len(t, s.Times, 25)
	require.NotEmpty(t, s.Groups)
	for _, g := range s.Groups {
		require.Equal(t, "travel", g.Key["app"])
		require.Len(t, g.Series, len(s.Times))
	}
	require.NotEmpty(t, s.Routes)
	require.Positive(t, s.Total.Latency.P95)

	// By channel, everything: the story's numbers.
	w = get(h, "/moat/analytics/api/summary?group_by=channel&since=2026-01-01T00:00:00Z&until=now")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
	require.EqualValues(t, story.Calls, s.Total.Calls)
	for _, g := range s.Groups {
		ch := g.Key["channel"]
		if ch == "unknown" {
			ch = ""
		}
		require.EqualValues(t, story.ByChannel[ch], g.Calls, ch)
	}

	// The raw JSON keeps the documented names.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	for _, k := range []string{"since", "until", "resolution", "group_by", "times", "total", "series", "groups", "other_groups", "routes", "recorder"} {
		require.Contains(t, raw, k)
	}
	total := raw["total"].(map[string]any)
	for _, k := range []string{"calls", "status", "latency_ms", "bytes_in", "bytes_out"} {
		require.Contains(t, total, k)
	}
}

func TestQueryAPISecurity(t *testing.T) {
	t.Parallel()
	h, story := storyHandler(t, "")
	w := get(h, "/analytics/api/security?since=-1d&resolution=minute&since=-6h")
	require.Equal(t, http.StatusBadRequest, w.Code, "since twice")
	w = get(h, "/analytics/api/security?since=-6h&group_by=kind,name")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var rep analytics.SecurityReport
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
	require.Equal(t, analytics.Hour, rep.Resolution, "minutes do not go back 6 hours")
	require.EqualValues(t, story.SecurityEvents, rep.Total)
	require.EqualValues(t, story.Refusals, rep.Refusals)
	require.EqualValues(t, story.Kinds[analytics.DeviceRefused], rep.Kinds["device_refused"])
	require.NotEmpty(t, rep.RefusedDevices)
	require.NotEmpty(t, rep.RefusedVersions)
	require.Regexp(t, `^d_`, rep.RefusedDevices[0].Device)

	w = get(h, "/analytics/api/security?since=-6h&resolution=minute")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
	require.Equal(t, analytics.Minute, rep.Resolution)
	require.True(t, rep.Retained.After(rep.Since), "the answer says how far back minutes go")
	require.Less(t, rep.Total, int64(story.SecurityEvents))

	w = get(h, "/analytics/api/security?kind=version_refused")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
	require.EqualValues(t, story.Kinds[analytics.VersionRefused], rep.Total)
	require.Equal(t, "1.9.0", rep.RefusedVersions[0].Version)
}

func TestDashboardPage(t *testing.T) {
	t.Parallel()
	h, story := storyHandler(t, "")
	w := get(h, "/analytics/")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	body := w.Body.String()
	csp := w.Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.NotContains(t, csp, "unsafe")
	require.NotContains(t, body, "<script")
	require.NotRegexp(t, `(src|href)="(https?:)?//`, body, "nothing external")
	// The inline style sheet is the one the CSP allows by hash.
	css := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)[1]
	sum := sha256.Sum256([]byte(css))
	require.Contains(t, csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")

	charts := analyticstest.RequireDashboard(t, body)
	require.Equal(t, story.Calls, charts["calls-by-platform"].Total)
	require.Equal(t, "DENY", w.Header().Get("X-Frame-Options"))

	require.Equal(t, http.StatusBadRequest, get(h, "/analytics/?range=5y").Code)
	require.Equal(t, http.StatusBadRequest, get(h, "/analytics/?x=1").Code)
	require.Equal(t, http.StatusOK, get(h, "/analytics/?range=1h").Code)
}

func TestDashboardEmptyAndEscaped(t *testing.T) {
	t.Parallel()
	clock := kvtest.NewClock()
	rec := newRecorder(t, analytics.Config{Clock: clock.Now})
	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: allowAll})
	require.NoError(t, err)
	body := get(h, "/analytics/").Body.String()
	require.Contains(t, body, "no data in this range")
	charts := analyticstest.Charts(body)
	require.Len(t, charts, len(analyticstest.DashboardCharts))
	require.Zero(t, charts["calls-by-app"].Marks)

	// Labels are client-declared: a hostile app id is shown as text.
	evil := `<script>alert(1)</script><svg onload=alert(2)>`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) {})
	mw := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		analytics.SetCaller(r.Context(), analytics.Caller{AppID: evil, Platform: `"><b>`, Channel: "phone"})
		mux.ServeHTTP(w, r)
	}))
	mw.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	rec.Security(context.Background(), analytics.SecurityEvent{Kind: analytics.DeviceRefused, Caller: analytics.Caller{AppID: evil, DeviceID: "x"}})
	require.NoError(t, rec.Flush(context.Background()))
	body = get(h, "/analytics/").Body.String()
	require.NotContains(t, body, "<script>alert")
	require.NotContains(t, body, "<svg onload")
	require.NotContains(t, body, `"><b>`)
	require.True(t, strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;"))
}
