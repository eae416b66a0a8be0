package pinning

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv/kvtest"
)

func sampleReport(t testing.TB) Report {
	t.Helper()
	return Report{
		Host: "api.example.com", Port: 443, Time: testNow, Mode: Enforce,
		ServedChain:   []Pin{mustPin(t, appleLeafPin), mustPin(t, appleCAPin)},
		VerifiedChain: []Pin{mustPin(t, appleLeafPin), mustPin(t, appleCAPin), mustPin(t, appleRootPin)},
		KnownPins:     []Pin{mustPin(t, userTrustPin), randomPin(t)},
		PinSetVersion: 3,
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := sampleReport(t)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Contains(t, string(b), `"mode":"enforce"`)
	require.Contains(t, string(b), `"time":"2026-01-02T03:04:05Z"`)
	back, err := ParseReport(b)
	require.NoError(t, err)
	require.Equal(t, r, back)
}

func TestParseReportRefuses(t *testing.T) {
	t.Parallel()
	good, err := json.Marshal(sampleReport(t))
	require.NoError(t, err)
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(good, &m))
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	pins := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = appleLeafPin
		}
		return out
	}
	for name, in := range map[string]string{
		"empty":             ``,
		"not an object":     `[]`,
		"truncated":         string(good[:len(good)-3]),
		"trailing":          string(good) + `{}`,
		"unknown member":    edit(func(m map[string]any) { m["cookie"] = "x" }),
		"no host":           edit(func(m map[string]any) { delete(m, "host") }),
		"bad host":          edit(func(m map[string]any) { m["host"] = "evil host/" }),
		"port":              edit(func(m map[string]any) { m["port"] = 70000 }),
		"negative port":     edit(func(m map[string]any) { m["port"] = -1 }),
		"no time":           edit(func(m map[string]any) { delete(m, "time") }),
		"bad time":          edit(func(m map[string]any) { m["time"] = "yesterday" }),
		"no mode":           edit(func(m map[string]any) { delete(m, "mode") }),
		"bad mode":          edit(func(m map[string]any) { m["mode"] = "maybe" }),
		"bad pin":           edit(func(m map[string]any) { m["served_chain"] = []string{"sha1/abc"} }),
		"empty chain":       edit(func(m map[string]any) { m["served_chain"] = []string{} }),
		"no verified chain": edit(func(m map[string]any) { delete(m, "verified_chain") }),
		"long chain":        edit(func(m map[string]any) { m["verified_chain"] = pins(maxReportChain + 1) }),
		"too many pins":     edit(func(m map[string]any) { m["known_pins"] = pins(maxReportPins + 1) }),
		"no known pins":     edit(func(m map[string]any) { m["known_pins"] = nil }),
		"wrong type":        edit(func(m map[string]any) { m["port"] = "443" }),
	} {
		_, err := ParseReport([]byte(in))
		require.ErrorIs(t, err, ErrInvalidReport, name)
	}
}

// reportSink is a report URI that counts what it receives.
type reportSink struct {
	srv      *httptest.Server
	received atomic.Int64
	block    chan struct{} // when non-nil, requests wait on it
}

func newReportSink(t testing.TB, block bool) *reportSink {
	t.Helper()
	s := &reportSink{}
	if block {
		s.block = make(chan struct{})
	}
	h, err := NewReportHandler(ReportHandlerConfig{OnReport: func(context.Context, Report) { s.received.Add(1) }})
	require.NoError(t, err)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.block != nil {
			select {
			case <-s.block:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		if s.block != nil {
			select {
			case <-s.block:
			default:
				close(s.block)
			}
		}
		s.srv.Close()
	})
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// flood reports n copies of base on ports from first on.
func flood(s Reporter, base Report, first, n int) {
	for i := range n {
		r := base
		r.Port = first + i
		s.Report(r)
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond)
}

func TestReportSenderFloodIsBounded(t *testing.T) {
	t.Parallel()
	sink := newReportSink(t, false)
	clock := kvtest.NewClock()
	s, err := NewReportSender(ReportSenderConfig{URL: sink.srv.URL, Burst: 3, Interval: time.Minute, Now: clock.Now, Logger: quietLogger()})
	require.NoError(t, err)
	defer s.Close()

	// A flood of distinct violations (another port each) at one instant.
	const n = 10000
	var wg sync.WaitGroup
	base := sampleReport(t)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				r := base
				r.Port = 1 + i
				s.Report(r)
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { st := s.Stats(); return st.Sent+st.Failed == 3 })
	st := s.Stats()
	require.Equal(t, ReportStats{Sent: 3, Dropped: n - 3}, st)
	require.EqualValues(t, 3, sink.received.Load())

	// The allowance grows by one per interval, and no more than Burst.
	clock.Advance(90 * time.Second)
	flood(s, base, 20000, 100)
	waitFor(t, func() bool { return s.Stats().Sent == 4 })
	clock.Advance(time.Hour)
	flood(s, base, 30000, 100)
	waitFor(t, func() bool { return s.Stats().Sent == 7 })
	require.EqualValues(t, 7, sink.received.Load())
}

func TestReportSenderDeduplicates(t *testing.T) {
	t.Parallel()
	sink := newReportSink(t, false)
	clock := kvtest.NewClock()
	s, err := NewReportSender(ReportSenderConfig{URL: sink.srv.URL, Burst: 100, DedupWindow: time.Hour, Now: clock.Now, Logger: quietLogger()})
	require.NoError(t, err)
	defer s.Close()
	r := sampleReport(t)
	for i := 0; i < 1000; i++ {
		r.Time = clock.Now() // the time does not make a report new
		s.Report(r)
	}
	waitFor(t, func() bool { return s.Stats().Sent == 1 })
	require.Equal(t, 999, s.Stats().Deduplicated)
	clock.Advance(time.Hour)
	s.Report(r)
	waitFor(t, func() bool { return s.Stats().Sent == 2 })
}

func TestReportSenderNeverBlocks(t *testing.T) {
	t.Parallel()
	sink := newReportSink(t, true) // the report URI hangs
	s, err := NewReportSender(ReportSenderConfig{URL: sink.srv.URL, Burst: 1000, Logger: quietLogger()})
	require.NoError(t, err)
	done := make(chan struct{})
	base := sampleReport(t)
	go func() {
		defer close(done)
		flood(s, base, 1, 5000)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Report blocked while the report URI hangs")
	}
	require.Positive(t, s.Stats().Dropped, "a full queue drops")
	require.NoError(t, s.Close(), "Close cancels the delivery in progress")
	require.NoError(t, s.Close(), "Close twice")
	before := s.Stats().Dropped
	s.Report(sampleReport(t))
	require.Equal(t, before+1, s.Stats().Dropped, "reports after Close are dropped")
}

func TestReportSenderFailures(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	s, err := NewReportSender(ReportSenderConfig{URL: srv.URL, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	require.NoError(t, err)
	defer s.Close()
	s.Report(sampleReport(t))
	waitFor(t, func() bool { return s.Stats().Failed == 1 })
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(logs.String(), "500") })

	for _, u := range []string{"", "report", "http://example.com/r", "ftp://127.0.0.1/r", "http://127.0.0.1.example.com/"} {
		_, err := NewReportSender(ReportSenderConfig{URL: u})
		require.Error(t, err, u)
	}
	_, err = NewReportSender(ReportSenderConfig{URL: "https://example.com/r", Burst: -1})
	require.Error(t, err)
	for _, u := range []string{"https://example.com/r", "http://localhost:8080/r", "http://[::1]/r", "http://127.0.0.2/r"} {
		s, err := NewReportSender(ReportSenderConfig{URL: u})
		require.NoError(t, err, u)
		require.NoError(t, s.Close())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestReportHandler(t *testing.T) {
	t.Parallel()
	var got []Report
	h, err := NewReportHandler(ReportHandlerConfig{OnReport: func(_ context.Context, r Report) { got = append(got, r) }, MaxBytes: 2048})
	require.NoError(t, err)
	good, err := json.Marshal(sampleReport(t))
	require.NoError(t, err)

	serve := func(method, ct string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/pins/report", bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := serve(http.MethodPost, "application/json; charset=utf-8", good)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Len(t, got, 1)
	require.Equal(t, sampleReport(t).Host, got[0].Host)

	for _, tc := range []struct {
		name, method, ct string
		body             []byte
		status           int
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, "", good, http.StatusUnsupportedMediaType},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", good, http.StatusUnsupportedMediaType},
		{"oversized", http.MethodPost, "application/json", append(good, bytes.Repeat([]byte(" "), 4096)...), http.StatusRequestEntityTooLarge},
		{"malformed", http.MethodPost, "application/json", []byte(`{"host":`), http.StatusBadRequest},
		{"wrong shape", http.MethodPost, "application/json", []byte(`{"host":"a.example.com","extra":true}`), http.StatusBadRequest},
	} {
		rec := serve(tc.method, tc.ct, tc.body)
		require.Equal(t, tc.status, rec.Code, tc.name)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"), tc.name)
		require.Contains(t, rec.Body.String(), `"error":"invalid_request"`, tc.name)
	}
	require.Len(t, got, 1, "refused reports never reach the callback")

	_, err = NewReportHandler(ReportHandlerConfig{})
	require.Error(t, err)
}

// A verifier wired to a real sender and handler: the violation arrives.
func TestReportsEndToEnd(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	received := make(chan Report, 1)
	h, err := NewReportHandler(ReportHandlerConfig{OnReport: func(_ context.Context, r Report) { received <- r }})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	sender, err := NewReportSender(ReportSenderConfig{URL: srv.URL})
	require.NoError(t, err)
	defer sender.Close()

	p := newPKI(t, host)
	v := mustVerifier(t, Config{Pins: setFor(t, host, PinOf(p.interA.cert), randomPin(t)), Reporter: sender})
	require.ErrorIs(t, handshake(t, p.impostor, tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})), ErrPinMismatch)
	select {
	case r := <-received:
		require.Equal(t, host, r.Host)
		require.Equal(t, PinOf(p.impostor.Leaf), r.VerifiedChain[0])
	case <-time.After(10 * time.Second):
		t.Fatal("no report arrived")
	}
}
