package analytics_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/moatsec/moat/analytics"
)

// A server records its calls: the recorder outermost, Annotate just
// outside the application's mux (after authentication, which here is a
// stand-in that sets the caller).
func ExampleRecorder_Middleware() {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // in production: a stable key from your secret store
	rec, err := analytics.New(analytics.Config{DeviceKey: key})
	if err != nil {
		panic(err)
	}
	defer rec.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /trips/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "a trip") })
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			analytics.SetCaller(r.Context(), analytics.Caller{AppID: "travel", Platform: "ios", Channel: "phone", DeviceID: "A1B2"})
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), struct{}{}, "principal")))
		})
	}
	server := rec.Middleware(authenticate(rec.Annotate(mux)))

	for _, path := range []string{"/trips/1", "/trips/2?access_token=secret", "/nowhere"} {
		server.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	_ = rec.Flush(context.Background())
	s, _ := rec.Summary(analytics.Query{GroupBy: []string{"route", "status"}})
	for _, g := range s.Groups {
		fmt.Println(g.Key["route"], g.Key["status"], g.Calls)
	}
	// Output:
	// GET /trips/{id} 2xx 2
	// unmatched 4xx 1
}

// Security hooks report outcomes; the brief sums them up.
func ExampleRecorder_Security() {
	rec, err := analytics.New(analytics.Config{DeviceKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		panic(err)
	}
	defer rec.Close(context.Background())
	ctx := context.Background()
	phone := analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "android", Channel: "phone", DeviceID: "p-1"}
	old := analytics.Caller{AppID: "travel", AppVersion: "1.9.0", Platform: "android", Channel: "phone", DeviceID: "p-2"}
	rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.ChallengeIssued, Caller: phone, Name: "password"})
	rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.ChallengeFailed, Caller: phone, Name: "password", Reason: "wrong_password"})
	rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.ChallengeAnswered, Caller: phone, Name: "password"})
	rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.VersionRefused, Caller: old, Name: "version-policy", Reason: "below_minimum"})
	_ = rec.Flush(ctx)

	rep, _ := rec.SecurityReport(analytics.Query{})
	fmt.Println("refused versions:", rep.RefusedVersions[0].App, rep.RefusedVersions[0].Version, rep.RefusedVersions[0].Count)
	brief, _ := rec.Brief(time.Time{}, time.Time{})
	fmt.Print(brief)
	// Output:
	// refused versions: travel 1.9.0 1
	// calls: 0
	// challenges: 1 issued, 1 answered, 1 failed; step-ups: 0 demanded, 0 completed
	// refusals: 1 (version_refused 1)
}

// The query API and dashboard go behind the host's own access control.
func ExampleNewHandler() {
	rec, _ := analytics.New(analytics.Config{DeviceKey: bytes.Repeat([]byte{7}, 32)})
	defer rec.Close(context.Background())
	operatorsOnly := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Operator") != "yes" { // use real authentication
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h, err := analytics.NewHandler(rec, analytics.HandlerConfig{Authorize: operatorsOnly, Prefix: "/moat"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/moat/analytics/", h)

	for _, target := range []string{"/moat/analytics/api/summary?group_by=channel", "/moat/analytics/api/summary?group_by=planet"} {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("X-Operator", "yes")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		fmt.Println(w.Code, strings.Contains(w.Body.String(), "unknown group_by dimension"))
	}
	_, err = analytics.NewHandler(rec, analytics.HandlerConfig{})
	fmt.Println(err)
	// Output:
	// 200 false
	// 400 true
	// moat/analytics: an authorizer is required for the query API and dashboard
}

func ExampleScrub() {
	fmt.Println(analytics.Scrub("/reset?token=abc123&lang=en"))
	fmt.Println(analytics.Scrub("refused eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"))
	fmt.Println(analytics.Scrub("GET /trips/{id}"))
	// Output:
	// /reset?token=[redacted]&lang=en
	// refused [jwt]
	// GET /trips/{id}
}

func ExampleJSONLines() {
	var out bytes.Buffer
	sink := analytics.NewJSONLines(&out)
	t := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	_ = sink.Export(context.Background(), &analytics.Batch{
		Calls: []analytics.Call{{Time: t, Source: analytics.Source{AppID: "travel", Channel: "phone", Device: "d_x"},
			Route: "GET /trips", Method: "GET", Status: 200, Duration: 3 * time.Millisecond, BytesOut: 120}},
		Security: []analytics.Security{{Time: t, Kind: analytics.ChallengeFailed, Name: "sms", Reason: "wrong_code"}},
	})
	fmt.Print(out.String())
	// Output:
	// {"type":"call","time":"2026-05-01T10:00:00Z","app":"travel","channel":"phone","device":"d_x","route":"GET /trips","method":"GET","status":200,"duration_ns":3000000,"bytes_in":0,"bytes_out":120}
	// {"type":"security","time":"2026-05-01T10:00:00Z","kind":"challenge_failed","name":"sms","reason":"wrong_code"}
}
