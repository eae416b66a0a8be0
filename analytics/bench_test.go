package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var benchKey = []byte("0123456789abcdef0123456789abcdef")

// cpuMeter adds up the thread CPU time of the timed parts of a benchmark,
// reported as cpu-ns/op: on a machine shared with other work, wall time
// per op also counts the time the benchmark waited for a core.
type cpuMeter struct {
	total, start time.Duration
}

func lockThread(b *testing.B) {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
}

func (m *cpuMeter) resume() { m.start = threadCPU() }
func (m *cpuMeter) pause()  { m.total += threadCPU() - m.start }
func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkRecord measures the request-path cost of recording one event
// against the floor of one atomic counter increment. The queue is drained
// with the timer stopped, so every event is queued, none dropped.
func BenchmarkRecord(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		lockThread(b)
		b.ReportAllocs()
		var n atomic.Uint64
		var cpu cpuMeter
		cpu.resume()
		for b.Loop() {
			n.Add(1)
		}
		cpu.pause()
		cpu.report(b)
	})
	newRec := func(b *testing.B) *Recorder {
		rec, err := New(Config{DeviceKey: benchKey, DrainInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = rec.Close(context.Background()) })
		return rec
	}
	// drainEvery keeps the queue below the wake threshold: the background
	// aggregator stays asleep and the benchmark drains with the timer off.
	const drainEvery = 1024
	// chunked records b.N events, draining the queue with the timers
	// stopped every drainEvery events.
	chunked := func(b *testing.B, rec *Recorder, record func()) {
		lockThread(b)
		b.ReportAllocs()
		var cpu cpuMeter
		cpu.resume()
		i := 0
		for b.Loop() {
			record()
			if i++; i%drainEvery == 0 {
				cpu.pause()
				b.StopTimer()
				rec.drain()
				b.StartTimer()
				cpu.resume()
			}
		}
		cpu.pause()
		cpu.report(b)
		b.ReportMetric(float64(rec.dropped.Load())/float64(b.N), "dropped/op")
	}
	b.Run("call", func(b *testing.B) {
		rec := newRec(b)
		caller := Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone",
			DeviceModel: "iPhone15,2", OSVersion: "17.4", DeviceID: "device-1"}
		req := httptest.NewRequest("GET", "/trips/42", nil)
		st := &callState{Context: req.Context()}
		st.route, st.caller, st.hasCaller = "GET /trips/{id}", caller, true
		st.w.bytes = 312
		start := time.Now()
		chunked(b, rec, func() { rec.recordCall(st, req, start, 3*time.Millisecond, 200) })
	})
	b.Run("security", func(b *testing.B) {
		rec := newRec(b)
		ev := SecurityEvent{Kind: ChallengeFailed, Name: "password", Reason: "wrong_password",
			Caller: Caller{AppID: "travel", Platform: "ios", Channel: "phone", DeviceID: "device-1"}}
		ctx := context.Background()
		chunked(b, rec, func() { rec.Security(ctx, ev) })
	})
	// parallel: every goroutine records while the aggregator drains as in
	// production; events beyond what it keeps up with are dropped (and
	// counted), which is the point: recording never waits.
	b.Run("call-parallel", func(b *testing.B) {
		rec, err := New(Config{DeviceKey: benchKey})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = rec.Close(context.Background()) })
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest("GET", "/trips/42", nil)
			st := &callState{Context: req.Context()}
			st.route, st.caller, st.hasCaller = "GET /trips/{id}", Caller{AppID: "travel", DeviceID: "d"}, true
			start := time.Now()
			for pb.Next() {
				rec.recordCall(st, req, start, time.Millisecond, 200)
			}
		})
		b.ReportMetric(float64(rec.dropped.Load())/float64(b.N), "dropped/op")
	})
}

// BenchmarkMiddleware measures a whole request through the recording
// middleware against the bare handler. cpu-ns/op is the request
// goroutine's own CPU time: wall time also counts the aggregator, which
// shares the two cores. flooded stalls the aggregator, so every event is
// dropped: requests cost the same.
func BenchmarkMiddleware(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trips/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", "/trips/42", nil)
		w := httptest.NewRecorder()
		lockThread(b)
		b.ReportAllocs()
		var cpu cpuMeter
		cpu.resume()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
		cpu.pause()
		cpu.report(b)
	}
	newRec := func(b *testing.B) *Recorder {
		rec, err := New(Config{DeviceKey: benchKey, Identify: func(*http.Request) Caller {
			return Caller{AppID: "travel", Platform: "ios", Channel: "phone", DeviceID: "device-1"}
		}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = rec.Close(context.Background()) })
		return rec
	}
	b.Run("bare", func(b *testing.B) { run(b, mux) })
	b.Run("recorded", func(b *testing.B) {
		rec := newRec(b)
		run(b, rec.Middleware(mux))
		b.ReportMetric(float64(rec.Stats().Dropped)/float64(b.N), "dropped/op")
	})
	b.Run("flooded", func(b *testing.B) {
		rec := newRec(b)
		rec.drainMu.Lock()
		defer rec.drainMu.Unlock()
		run(b, rec.Middleware(mux))
		b.ReportMetric(float64(rec.Stats().Dropped)/float64(b.N), "dropped/op")
	})
}

// fillAggregates ingests n synthetic calls spread evenly over the day
// before now: 3 apps x 3 versions x 3 platforms x 4 channels x 12 routes
// x 3 status classes, latencies from 1 ms to 1 s.
func fillAggregates(b *testing.B, rec *Recorder, now time.Time, n int) []Call {
	if b != nil {
		b.Helper()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	apps := []string{"travel", "travel-watch", "travel-web"}
	versions := []string{"2.4.1", "2.4.0", "2.3.9"}
	platforms := []string{"ios", "android", "web"}
	channels := []string{"phone", "tablet", "watch", "web"}
	var routes []string
	for i := range 12 {
		routes = append(routes, fmt.Sprintf("GET /api/v1/resource%d/{id}", i))
	}
	statuses := []int{200, 200, 200, 200, 200, 200, 204, 401, 403, 500}
	calls := make([]Call, n)
	start := now.Add(-24 * time.Hour)
	for i := range calls {
		calls[i] = Call{
			Time: start.Add(time.Duration(i) * (24 * time.Hour / time.Duration(n))),
			Source: Source{AppID: apps[rng.IntN(3)], AppVersion: versions[rng.IntN(3)],
				Platform: platforms[rng.IntN(3)], Channel: channels[rng.IntN(4)]},
			Route: routes[rng.IntN(12)], Method: "GET", Status: statuses[rng.IntN(len(statuses))],
			Duration: time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))),
		}
	}
	rec.mu.Lock()
	rec.agg.addBatch(&Batch{Calls: calls}, now)
	rec.mu.Unlock()
	return calls
}

// BenchmarkSummary answers queries over 1,000,000 aggregated calls. The
// raw-scan baseline groups the same calls, kept raw, by app, platform and
// channel: what a query would cost without aggregation.
func BenchmarkSummary(b *testing.B) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec, err := New(Config{DeviceKey: benchKey, Clock: func() time.Time { return now }, MinuteRetention: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	calls := fillAggregates(b, rec, now, 1_000_000)
	b.Run("raw-scan", func(b *testing.B) {
		lockThread(b)
		b.ReportAllocs()
		var cpu cpuMeter
		cpu.resume()
		for b.Loop() {
			m := make(map[[3]string]int)
			for i := range calls {
				m[[3]string{calls[i].AppID, calls[i].Platform, calls[i].Channel}]++
			}
		}
		cpu.pause()
		cpu.report(b)
	})
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"24h-hour-app,platform,channel", Query{Since: now.Add(-24 * time.Hour), Until: now, Resolution: Hour,
			GroupBy: []string{"app", "platform", "channel"}}},
		{"24h-hour-route-filtered", Query{Since: now.Add(-24 * time.Hour), Until: now, Resolution: Hour,
			GroupBy: []string{"route"}, Filter: map[string]string{"app": "travel"}}},
		{"6h-minute-app,platform,channel", Query{Since: now.Add(-6 * time.Hour), Until: now, Resolution: Minute,
			GroupBy: []string{"app", "platform", "channel"}}},
		{"16h-minute-all-dims", Query{Since: now.Add(-16 * time.Hour), Until: now, Resolution: Minute,
			GroupBy: CallDims, Limit: 1000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lockThread(b)
			b.ReportAllocs()
			var s *Summary
			var cpu cpuMeter
			cpu.resume()
			for b.Loop() {
				var err error
				if s, err = rec.Summary(bc.q); err != nil {
					b.Fatal(err)
				}
			}
			cpu.pause()
			cpu.report(b)
			b.ReportMetric(float64(s.Total.Calls), "calls")
		})
	}
}

// BenchmarkAggregate measures the aggregator's side: draining and
// aggregating queued events (pseudonym, scrub, two buckets), per event.
func BenchmarkAggregate(b *testing.B) {
	rec, err := New(Config{DeviceKey: benchKey, DrainInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	it := item{time: time.Now(), route: "GET /trips/{id}", method: "GET", status: 200, dur: time.Millisecond,
		caller: Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone", DeviceID: "device-1"}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec.enqueue(&it)
		if i++; i%1024 == 0 {
			rec.drain()
		}
	}
}
