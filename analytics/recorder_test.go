package analytics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{}, ErrNoDeviceKey},
		{Config{DeviceKey: []byte("short")}, ErrNoDeviceKey},
		{Config{DeviceKey: benchKey, QueueSize: -1}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, QueueSize: 1 << 21}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, MaxSeries: -5}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, MinuteRetention: time.Second}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, MinuteRetention: 49 * time.Hour}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, HourRetention: time.Minute}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, HourRetention: 91 * 24 * time.Hour}, ErrInvalidConfig},
		{Config{DeviceKey: benchKey, DrainInterval: time.Microsecond}, ErrInvalidConfig},
	} {
		_, err := New(tc.cfg)
		require.ErrorIs(t, err, tc.want)
	}
	rec, err := New(Config{DeviceKey: benchKey})
	require.NoError(t, err)
	require.NoError(t, rec.Close(context.Background()))
	require.ErrorIs(t, rec.Close(context.Background()), ErrClosed)
}

func TestQueue(t *testing.T) {
	t.Parallel()
	q := newQueue(5)
	require.Equal(t, 8, q.cap())
	var it item
	require.False(t, q.pop(&it))
	for i := range 8 {
		require.True(t, q.push(&item{status: int32(i)}))
	}
	require.False(t, q.push(&item{status: 99}), "full")
	require.Equal(t, 8, q.len())
	for i := range 8 {
		require.True(t, q.pop(&it))
		require.EqualValues(t, i, it.status)
	}
	require.False(t, q.pop(&it))
	require.True(t, q.push(&item{status: 100}), "wraps around")
	require.True(t, q.pop(&it))
	require.EqualValues(t, 100, it.status)
}

func TestQueueConcurrentProducers(t *testing.T) {
	t.Parallel()
	q := newQueue(256)
	const producers, each = 8, 2000
	var pushed, dropped atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if q.push(&item{status: int32(p*each + i), route: "r"}) {
					pushed.Add(1)
				} else {
					dropped.Add(1)
				}
			}
		})
	}
	seen := make(map[int32]bool)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var it item
	for {
		if q.pop(&it) {
			require.False(t, seen[it.status], "popped twice")
			require.Equal(t, "r", it.route)
			seen[it.status] = true
			continue
		}
		select {
		case <-done:
			for q.pop(&it) {
				seen[it.status] = true
			}
			require.EqualValues(t, producers*each, pushed.Load()+dropped.Load())
			require.EqualValues(t, pushed.Load(), len(seen))
			return
		default:
		}
	}
}

// serveTimed sends n requests through h and returns each one's duration.
func serveTimed(h http.Handler, n int) []time.Duration {
	took := make([]time.Duration, n)
	for i := range n {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		start := time.Now()
		h.ServeHTTP(w, req)
		took[i] = time.Since(start)
		if w.Code != 204 {
			panic("request failed")
		}
	}
	return took
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFloodedQueueDropsAndNeverBlocks stalls the aggregator and sends ten
// thousand requests through the middleware: each completes, the queue
// keeps what it can hold, and the rest are counted as dropped.
func TestFloodedQueueDropsAndNeverBlocks(t *testing.T) {
	t.Parallel()
	noContent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	const n = 10000

	// The baseline: the same requests through a recorder with room for
	// all of them.
	calm, err := New(Config{DeviceKey: benchKey, QueueSize: 2 * n})
	require.NoError(t, err)
	defer calm.Close(context.Background())
	base := median(serveTimed(calm.Middleware(noContent), n))
	require.Zero(t, calm.Stats().Dropped)

	rec, err := New(Config{DeviceKey: benchKey, QueueSize: 64})
	require.NoError(t, err)
	defer rec.Close(context.Background())
	h := rec.Middleware(noContent)

	rec.drainMu.Lock() // the aggregator is stuck
	var flooded []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		flooded = serveTimed(h, n)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a deadlock detector, not a timing assertion
		t.Fatal("requests blocked on a stalled recorder")
	}
	// Timings are for the log only (performance is measured by
	// BenchmarkMiddleware): a median that grew by far would show blocking
	// or a slow path for dropped events.
	t.Logf("median request time: %v with a recorder that keeps up, %v with a flooded queue", base, median(flooded))
	st := rec.Stats()
	require.EqualValues(t, n-64, st.Dropped)
	require.Equal(t, 64, st.Queued)
	rec.drainMu.Unlock()

	require.NoError(t, rec.Flush(context.Background()))
	st = rec.Stats()
	require.EqualValues(t, 64, st.Aggregated)
	require.Zero(t, st.Queued)
	s, err := rec.Summary(Query{})
	require.NoError(t, err)
	require.EqualValues(t, 64, s.Total.Calls)
	require.EqualValues(t, n-64, s.Recorder.Dropped)
}

func TestEventsAfterCloseAreDropped(t *testing.T) {
	t.Parallel()
	rec, err := New(Config{DeviceKey: benchKey})
	require.NoError(t, err)
	rec.Security(context.Background(), SecurityEvent{Kind: CheckBlocked})
	require.NoError(t, rec.Close(context.Background()))
	rec.Security(context.Background(), SecurityEvent{Kind: CheckBlocked})
	st := rec.Stats()
	require.EqualValues(t, 1, st.Aggregated)
	require.EqualValues(t, 1, st.Dropped)
	// Queries still work.
	rep, err := rec.SecurityReport(Query{})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Refusals)
}

func TestBackgroundDrain(t *testing.T) {
	t.Parallel()
	rec, err := New(Config{DeviceKey: benchKey, DrainInterval: time.Millisecond})
	require.NoError(t, err)
	defer rec.Close(context.Background())
	rec.Security(context.Background(), SecurityEvent{Kind: ChallengeIssued})
	require.Eventually(t, func() bool { return rec.Stats().Aggregated == 1 }, time.Minute, time.Millisecond)
}

// blockingSink blocks every export until released.
type blockingSink struct {
	release chan struct{}
	got     atomic.Int64
	fail    bool
}

func (s *blockingSink) Export(ctx context.Context, b *Batch) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.got.Add(int64(len(b.Calls) + len(b.Security)))
	if s.fail {
		return errors.New("disk full")
	}
	return nil
}

func TestSlowSinkNeverSlowsAggregation(t *testing.T) {
	t.Parallel()
	sink := &blockingSink{release: make(chan struct{})}
	rec, err := New(Config{DeviceKey: benchKey, Sink: sink, DrainInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	// More batches than the sink queue holds, while the sink is stuck.
	for range sinkQueue + 10 {
		rec.Security(context.Background(), SecurityEvent{Kind: ChallengeIssued})
		require.NoError(t, rec.Flush(context.Background()))
	}
	st := rec.Stats()
	require.EqualValues(t, sinkQueue+10, st.Aggregated, "aggregation went on")
	require.Positive(t, st.SinkDropped)
	// Close gives up waiting for the stuck sink when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, rec.Close(ctx), context.Canceled)
}

func TestCloseWaitsForSinkAndCountsErrors(t *testing.T) {
	t.Parallel()
	sink := &blockingSink{release: make(chan struct{}), fail: true}
	close(sink.release)
	var logged bytes.Buffer
	rec, err := New(Config{DeviceKey: benchKey, Sink: sink, DrainInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	require.NoError(t, err)
	for range 3 {
		rec.Security(context.Background(), SecurityEvent{Kind: ChallengeIssued})
	}
	require.NoError(t, rec.Close(context.Background()))
	require.EqualValues(t, 3, sink.got.Load())
	require.EqualValues(t, 1, rec.Stats().SinkErrors)
	require.Contains(t, logged.String(), "disk full")
}

func TestMonoClock(t *testing.T) {
	t.Parallel()
	c := newMonoClock()
	a := c.now()
	wall := time.Now()
	b := c.now()
	require.False(t, b.Before(a), "monotonic")
	require.WithinDuration(t, wall, b, time.Second)
	c.anchor()
	require.False(t, c.now().Before(b))
}
