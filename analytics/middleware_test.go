package analytics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/analytics/analyticstest"
	"github.com/moatsec/moat/kv/kvtest"
)

// calls records the requests through build(rec) and returns the calls
// the recorder exported.
func calls(t *testing.T, cfg analytics.Config, build func(*analytics.Recorder) http.Handler, reqs ...*http.Request) []analytics.Call {
	t.Helper()
	capture := new(analyticstest.Capture)
	cfg.Sink = capture
	rec := newRecorder(t, cfg)
	h := build(rec)
	for _, r := range reqs {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	require.NoError(t, rec.Close(context.Background()))
	got := capture.Calls()
	require.Len(t, got, len(reqs))
	return got
}

type principalKey struct{}

// authStage stands in for moat's resource middleware: it puts a principal
// in the context and passes down a new request, as real stages do.
func authStage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		c := analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone", DeviceID: "dev-1"}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, c)))
	})
}

func identify(r *http.Request) analytics.Caller {
	c, _ := r.Context().Value(principalKey{}).(analytics.Caller)
	return c
}

func travelMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trips/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("trip")) })
	mux.HandleFunc("POST /trips/{id}/pay", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

func authed(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "DPoP "+sampleJWT)
	return r
}

const sampleJWT = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"

func TestMiddlewareLearnsRoutePattern(t *testing.T) {
	t.Parallel()
	mux := travelMux()
	for _, tc := range []struct {
		name  string
		cfg   analytics.Config
		build func(*analytics.Recorder) http.Handler
		req   *http.Request
		route string
		app   string
	}{
		{
			name:  "recorder wraps the mux directly",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(mux) },
			req:   authed("GET", "/trips/42?access_token=x"), route: "GET /trips/{id}",
		},
		{
			name:  "a stage replaces the request, Annotate outside the mux",
			cfg:   analytics.Config{Identify: identify},
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(authStage(rec.Annotate(mux))) },
			req:   authed("POST", "/trips/42/pay"), route: "POST /trips/{id}/pay", app: "travel",
		},
		{
			name: "Annotate inside the mux, around the route's handler",
			cfg:  analytics.Config{Identify: identify},
			build: func(rec *analytics.Recorder) http.Handler {
				m := http.NewServeMux()
				m.Handle("GET /trips/{id}", rec.Annotate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
				return rec.Middleware(authStage(m))
			},
			req: authed("GET", "/trips/7"), route: "GET /trips/{id}", app: "travel",
		},
		{
			name:  "a stage replaces the request, no Annotate, Config.Routes",
			cfg:   analytics.Config{Routes: mux},
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(authStage(mux)) },
			req:   authed("GET", "/trips/9"), route: "GET /trips/{id}",
		},
		{
			name:  "a stage replaces the request, nothing else: unmatched, never the path",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(authStage(mux)) },
			req:   authed("GET", "/trips/secret-trip-id"), route: analytics.RouteUnmatched,
		},
		{
			name:  "no route matches",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(mux) },
			req:   authed("GET", "/admin/reset/"+sampleJWT), route: analytics.RouteUnmatched,
		},
		{
			name: "another router says the pattern with SetRoute",
			build: func(rec *analytics.Recorder) http.Handler {
				return rec.Middleware(authStage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					analytics.SetRoute(r.Context(), "GET /chi/{id}")
				})))
			},
			req: authed("GET", "/chi/1"), route: "GET /chi/{id}",
		},
		{
			name:  "refused before routing",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(authStage(rec.Annotate(mux))) },
			req:   httptest.NewRequest("GET", "/trips/1", nil), route: analytics.RouteUnmatched,
		},
		{
			name:  "a pattern without a method",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(mux) },
			req:   httptest.NewRequest("GET", "/health", nil), route: "/health",
		},
		{
			name:  "CONNECT patterns are not trusted",
			build: func(rec *analytics.Recorder) http.Handler { return rec.Middleware(mux) },
			req:   httptest.NewRequest("CONNECT", "/health", nil), route: analytics.RouteUnmatched,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := calls(t, tc.cfg, tc.build, tc.req)[0]
			require.Equal(t, tc.route, got.Route)
			require.Equal(t, tc.app, got.AppID)
		})
	}
}

func TestMiddlewareStatusBytesAndTime(t *testing.T) {
	t.Parallel()
	clock := kvtest.NewClock()
	start := clock.Now()
	h := http.NewServeMux()
	h.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(42 * time.Millisecond)
		_, _ = w.Write([]byte("hello"))
	})
	h.HandleFunc("GET /early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusOK) // superfluous: ignored
	})
	h.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	h.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, http.NewResponseController(w).Flush())
		_, _ = w.Write([]byte("x"))
	})
	h.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h.HandleFunc("GET /weird", func(w http.ResponseWriter, r *http.Request) {})
	post := httptest.NewRequest("POST", "/upload", strings.NewReader("0123456789"))
	weird := httptest.NewRequest("GET", "/weird", nil)
	weird.Method = "BREW"
	got := calls(t, analytics.Config{Clock: clock.Now}, func(rec *analytics.Recorder) http.Handler { return rec.Middleware(h) },
		httptest.NewRequest("GET", "/ok", nil), httptest.NewRequest("GET", "/early-hints", nil),
		httptest.NewRequest("GET", "/empty", nil), httptest.NewRequest("GET", "/flush", nil), post, weird)
	require.Equal(t, 200, got[0].Status)
	require.EqualValues(t, 5, got[0].BytesOut)
	require.Equal(t, 42*time.Millisecond, got[0].Duration)
	require.Equal(t, start, got[0].Time)
	require.Equal(t, http.StatusTeapot, got[1].Status)
	require.Equal(t, 200, got[2].Status)
	require.Equal(t, 200, got[3].Status)
	require.EqualValues(t, 1, got[3].BytesOut)
	require.Equal(t, 202, got[4].Status)
	require.EqualValues(t, 10, got[4].BytesIn)
	require.Equal(t, "POST", got[4].Method)
	require.Equal(t, "OTHER", got[5].Method, "invented methods must not add labels")
}

func TestMiddlewareRecordsPanicsAs500(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	got := calls(t, analytics.Config{}, func(rec *analytics.Recorder) http.Handler {
		inner := rec.Middleware(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { require.Equal(t, "boom", recover(), "the panic must go on") }()
			inner.ServeHTTP(w, r)
		})
	}, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 500, got[0].Status)
}

func TestCallerPseudonymizedAndScrubbed(t *testing.T) {
	t.Parallel()
	rawID := "raw-device-id-0042"
	cfg := analytics.Config{Identify: func(r *http.Request) analytics.Caller {
		return analytics.Caller{AppID: "travel", AppVersion: "2.4.1 " + sampleJWT, Platform: "ios",
			Channel: "phone", DeviceModel: "iPhone15,2", OSVersion: "17.4", DeviceID: rawID}
	}}
	got := calls(t, cfg, func(rec *analytics.Recorder) http.Handler { return rec.Middleware(travelMux()) },
		authed("GET", "/trips/1"), authed("GET", "/trips/2"))
	require.Regexp(t, `^d_[A-Za-z0-9_-]{22}$`, got[0].Device)
	require.Equal(t, got[0].Device, got[1].Device)
	require.NotContains(t, got[0].Device, rawID)
	require.Equal(t, "2.4.1 [jwt]", got[0].AppVersion)
	require.Equal(t, "iPhone15,2", got[0].DeviceModel)
	require.Equal(t, "17.4", got[0].OSVersion)
}

func TestSetCallerAndSecurityFromContext(t *testing.T) {
	t.Parallel()
	capture := new(analyticstest.Capture)
	rec := newRecorder(t, analytics.Config{Sink: capture})
	caller := analytics.Caller{AppID: "travel", Platform: "android", Channel: "watch", DeviceID: "w-1"}
	h := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		analytics.SetCaller(r.Context(), caller)
		// A hook deep in the stack reports without a caller of its own.
		rec.Security(r.Context(), analytics.SecurityEvent{Kind: analytics.StepUpDemanded, Name: "payment", Reason: "acr_sms"})
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	// Outside a recorded request these are no-ops.
	analytics.SetCaller(context.Background(), caller)
	analytics.SetRoute(context.Background(), "GET /x")
	rec.Security(context.Background(), analytics.SecurityEvent{Kind: analytics.PinViolation, Name: "api.example"})
	require.NoError(t, rec.Close(context.Background()))

	sec := capture.Security()
	require.Len(t, sec, 2)
	require.Equal(t, "watch", sec[0].Channel)
	require.Equal(t, capture.Calls()[0].Device, sec[0].Device)
	require.Equal(t, analytics.StepUpDemanded, sec[0].Kind)
	require.Empty(t, sec[1].AppID)
}

func TestMiddlewareKeepsContextValuesAndCancellation(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, analytics.Config{})
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var sawValue, sawDone bool
	h := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawValue = r.Context().Value(key{}) == "v"
		child, stop := context.WithCancel(r.Context())
		defer stop()
		cancel()
		<-child.Done()
		sawDone = true
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	require.True(t, sawValue)
	require.True(t, sawDone)
}
