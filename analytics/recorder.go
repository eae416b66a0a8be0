package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a [Recorder]. It is read once by [New].
type Config struct {
	// DeviceKey is the HMAC-SHA256 key that turns device ids into
	// pseudonyms. Required, at least 32 bytes, from crypto/rand, and kept
	// as secret as any key: whoever holds it can test a guessed device id
	// against a pseudonym. Keep it stable, or pseudonyms change.
	DeviceKey []byte

	// Identify tells who made a call, from the request as the recorder's
	// [Recorder.Annotate] stage sees it (or, without one, as
	// [Recorder.Middleware] sees it). In moat the root package reads the
	// principal the resource middleware put in the context. It runs on the
	// request path after the handler: keep it cheap and allocation-free.
	// Nil: calls carry only what [SetCaller] sets, else no caller.
	Identify func(*http.Request) Caller

	// Routes, when set, is asked for the route pattern of a call whose
	// pattern was learned no other way (see [Recorder.Middleware]). An
	// *http.ServeMux fits. Nil: such calls are labelled [RouteUnmatched].
	Routes RouteMatcher

	// QueueSize is how many events may wait to be aggregated (rounded up
	// to a power of two); beyond it, events are dropped and counted in
	// [Stats.Dropped]. Zero: 8192. At most 1<<20.
	QueueSize int

	// MinuteRetention is how long per-minute aggregates are kept. Zero: 2
	// hours. At most 48 hours.
	MinuteRetention time.Duration
	// HourRetention is how long per-hour aggregates are kept. Zero: 48
	// hours. At most 90 days.
	HourRetention time.Duration
	// MaxSeries caps the distinct label combinations one time bucket keeps
	// per table (calls, security, refusals); events beyond it are folded
	// into one "(other)" series and counted in [Stats.Overflow]. Labels are
	// client-declared, so this bounds the memory a client inventing app
	// versions can take. Zero: 5000. At most 100000.
	MaxSeries int

	// Sink, when set, receives every recorded event in batches, from a
	// goroutine of its own: a slow sink never slows requests or
	// aggregation; batches it cannot take in time are dropped and counted
	// in [Stats.SinkDropped]. Nil: events are only aggregated.
	Sink Sink

	// Clock returns the current time. Nil: the system clock (read as the
	// monotonic time elapsed since a wall-clock reading taken at every
	// drain, which halves the cost of a reading).
	Clock func() time.Time
	// Logger receives sink errors. Nil: slog.Default().
	Logger *slog.Logger
	// DrainInterval is how often queued events are aggregated when the
	// queue is not filling up (a filling queue wakes the aggregator at
	// once). Zero: 250ms.
	DrainInterval time.Duration
}

// RouteMatcher finds the route pattern for a request without serving it.
// *http.ServeMux implements it.
type RouteMatcher interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

var _ RouteMatcher = (*http.ServeMux)(nil)

// Stats counts what the recorder did since it was made.
type Stats struct {
	// Aggregated counts events taken from the queue and aggregated (Late
	// of them were too old to keep).
	Aggregated uint64 `json:"aggregated"`
	// Dropped counts events refused because the queue was full or the
	// recorder closed.
	Dropped uint64 `json:"dropped"`
	// Queued is how many events wait in the queue now.
	Queued int `json:"queued"`
	// Late counts events older than every retention when aggregated.
	Late uint64 `json:"late"`
	// Overflow counts events folded into "(other)" by MaxSeries.
	Overflow uint64 `json:"overflow"`
	// SinkDropped counts events the sink could not take in time.
	SinkDropped uint64 `json:"sink_dropped"`
	// SinkErrors counts batches the sink failed to export.
	SinkErrors uint64 `json:"sink_errors"`
}

// item is one queued event, raw: the caller's device id is still in it.
// It never leaves the recorder.
type item struct {
	time     time.Time
	caller   Caller
	route    string // call: the route pattern
	method   string // call: a constant method name
	name     string // security
	reason   string // security
	dur      time.Duration
	bytesIn  int64
	bytesOut int64
	status   int32
	kind     Kind
	security bool
}

// Recorder records API calls and security outcomes without ever blocking
// the caller, aggregates them in memory, and answers queries about them.
// It is safe for concurrent use. Make one with [New]; stop it with
// [Recorder.Close].
type Recorder struct {
	now       func() time.Time
	clock     *monoClock // the default clock; nil when Config.Clock is set
	identify  func(*http.Request) Caller
	routes    RouteMatcher
	queue     *queue
	wakeAt    int
	wake      chan struct{}
	stop      chan struct{}
	runDone   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	dropped   atomic.Uint64
	logger    *slog.Logger

	drainMu sync.Mutex // one drain at a time; guards batch, scratch and pseudo
	batch   []item
	scratch Batch // the drained events when there is no sink to hand them to
	pseudo  *pseudonymizer

	mu  sync.RWMutex // guards agg
	agg *aggregates

	sink        Sink
	sinkCh      chan *Batch
	sinkDone    chan struct{}
	sinkCtx     context.Context
	sinkCancel  context.CancelFunc
	sinkDropped atomic.Uint64
	sinkErrors  atomic.Uint64
}

const (
	defaultQueueSize       = 8192
	defaultMinuteRetention = 2 * time.Hour
	defaultHourRetention   = 48 * time.Hour
	defaultMaxSeries       = 5000
	defaultDrainInterval   = 250 * time.Millisecond
	drainBatch             = 1024
	sinkQueue              = 64
)

// New returns a running recorder.
func New(cfg Config) (*Recorder, error) {
	if len(cfg.DeviceKey) < 32 {
		return nil, ErrNoDeviceKey
	}
	or := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	queue := cfg.QueueSize
	if queue == 0 {
		queue = defaultQueueSize
	}
	maxSeries := cfg.MaxSeries
	if maxSeries == 0 {
		maxSeries = defaultMaxSeries
	}
	minRet := or(cfg.MinuteRetention, defaultMinuteRetention)
	hourRet := or(cfg.HourRetention, defaultHourRetention)
	interval := or(cfg.DrainInterval, defaultDrainInterval)
	switch {
	case queue < 1 || queue > 1<<20:
		return nil, fmt.Errorf("%w: QueueSize %d is not within 1..%d", ErrInvalidConfig, queue, 1<<20)
	case maxSeries < 1 || maxSeries > 100000:
		return nil, fmt.Errorf("%w: MaxSeries %d is not within 1..100000", ErrInvalidConfig, maxSeries)
	case minRet < time.Minute || minRet > 48*time.Hour:
		return nil, fmt.Errorf("%w: MinuteRetention %v is not within 1m..48h", ErrInvalidConfig, minRet)
	case hourRet < time.Hour || hourRet > 90*24*time.Hour:
		return nil, fmt.Errorf("%w: HourRetention %v is not within 1h..2160h", ErrInvalidConfig, hourRet)
	case interval < time.Millisecond:
		return nil, fmt.Errorf("%w: DrainInterval %v is under 1ms", ErrInvalidConfig, interval)
	}
	r := &Recorder{
		now:      cfg.Clock,
		identify: cfg.Identify,
		routes:   cfg.Routes,
		queue:    newQueue(queue),
		wakeAt:   max(queue/4, 1),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		runDone:  make(chan struct{}),
		logger:   cfg.Logger,
		batch:    make([]item, min(queue, drainBatch)),
		pseudo:   newPseudonymizer(cfg.DeviceKey),
		agg:      newAggregates(minRet, hourRet, maxSeries),
		sink:     cfg.Sink,
	}
	if r.now == nil {
		r.clock = newMonoClock()
		r.now = r.clock.now
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if r.sink != nil {
		r.sinkCh = make(chan *Batch, sinkQueue)
		r.sinkDone = make(chan struct{})
		r.sinkCtx, r.sinkCancel = context.WithCancel(context.Background())
		go r.runSink()
	}
	go r.run(interval)
	return r, nil
}

// Security records a security outcome. It never blocks: when the queue is
// full the event is dropped and counted. ctx is only read for the caller
// of the request being recorded, when e.Caller is zero.
func (r *Recorder) Security(ctx context.Context, e SecurityEvent) {
	caller := &e.Caller
	if e.Caller.IsZero() {
		if st := stateFrom(ctx); st != nil {
			c, _ := st.getCaller()
			caller = &c
		}
	}
	now := r.now() // before claiming: nothing may fail between claim and publish
	s, pos, ok := r.claim()
	if !ok {
		return
	}
	s.it = item{time: now, caller: *caller, name: e.Name, reason: e.Reason, kind: e.Kind, security: true}
	r.publish(s, pos)
}

// claim is the hot path: it reserves a queue slot, or counts a drop. The
// caller must publish the slot: until then the aggregator cannot read past
// it, so nothing that can panic or block may run in between.
func (r *Recorder) claim() (*slot, uint64, bool) {
	if r.closed.Load() {
		r.dropped.Add(1)
		return nil, 0, false
	}
	s, pos, ok := r.queue.claim()
	if !ok {
		r.dropped.Add(1)
	}
	return s, pos, ok
}

// publish releases a filled slot to the aggregator, waking it when the
// queue fills up.
func (r *Recorder) publish(s *slot, pos uint64) {
	r.queue.publish(s, pos)
	if r.queue.len() >= r.wakeAt {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// enqueue queues a copy of *it.
func (r *Recorder) enqueue(it *item) {
	if s, pos, ok := r.claim(); ok {
		s.it = *it
		r.publish(s, pos)
	}
}

// run aggregates queued events until Close.
func (r *Recorder) run(interval time.Duration) {
	defer close(r.runDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.wake:
		}
		if r.clock != nil {
			r.clock.anchor()
		}
		r.drain()
	}
}

// drain aggregates every queued event (and hands them to the sink).
func (r *Recorder) drain() {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	for {
		n := 0
		for n < len(r.batch) && r.queue.pop(&r.batch[n]) {
			n++
		}
		if n == 0 {
			return
		}
		batch := r.batch[:n]
		out := &r.scratch
		if r.sink != nil {
			out = &Batch{Calls: make([]Call, 0, n)}
		}
		out.Calls, out.Security = out.Calls[:0], out.Security[:0]
		for i := range batch {
			it := &batch[i]
			src := r.pseudo.source(&it.caller)
			if it.security {
				kind := it.kind
				if kind >= kindCount {
					kind = 0 // "unknown": an invalid kind from a buggy hook
				}
				out.Security = append(out.Security, Security{
					Time: it.time, Source: src, Kind: kind,
					Name: cleanLabel(it.name), Reason: cleanLabel(it.reason),
				})
				continue
			}
			out.Calls = append(out.Calls, Call{
				Time: it.time, Source: src, Route: cleanLabel(it.route), Method: it.method,
				Status: int(it.status), Duration: it.dur, BytesIn: it.bytesIn, BytesOut: it.bytesOut,
			})
		}
		full := n == len(r.batch)
		clear(batch) // let the raw strings go
		now := r.now()
		r.mu.Lock()
		r.agg.prune(now)
		r.agg.addBatch(out, now)
		r.mu.Unlock()
		if r.sink != nil {
			select {
			case r.sinkCh <- out:
			default:
				r.sinkDropped.Add(uint64(len(out.Calls) + len(out.Security)))
			}
		} else {
			clear(out.Calls)
			clear(out.Security)
		}
		if !full {
			return
		}
	}
}

func (r *Recorder) runSink() {
	defer close(r.sinkDone)
	for b := range r.sinkCh {
		if r.sinkCtx.Err() != nil { // Close gave up waiting: drop the rest
			r.sinkDropped.Add(uint64(len(b.Calls) + len(b.Security)))
			continue
		}
		if err := r.sink.Export(r.sinkCtx, b); err != nil {
			r.sinkErrors.Add(1)
			r.logger.Warn("moat/analytics: sink export failed", "events", len(b.Calls)+len(b.Security), "err", err)
		}
	}
}

// Flush aggregates every event queued so far, so that queries see them.
// Queries do not flush by themselves: events appear in them within
// [Config.DrainInterval].
func (r *Recorder) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.drain()
	return nil
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	r.mu.RLock()
	s := Stats{Aggregated: r.agg.aggregated, Late: r.agg.late, Overflow: r.agg.overflow}
	r.mu.RUnlock()
	s.Dropped = r.dropped.Load()
	s.Queued = r.queue.len()
	s.SinkDropped = r.sinkDropped.Load()
	s.SinkErrors = r.sinkErrors.Load()
	return s
}

// Close stops the recorder: later events are dropped, queued ones are
// aggregated and handed to the sink, and Close waits for the sink to
// finish or ctx to end (then the sink's context is cancelled and Close
// returns ctx's error). Events recorded while Close runs may be lost.
// Queries keep working after Close.
func (r *Recorder) Close(ctx context.Context) error {
	first := false
	r.closeOnce.Do(func() {
		first = true
		r.closed.Store(true)
		close(r.stop)
		<-r.runDone
		r.drain()
		if r.sink != nil {
			close(r.sinkCh)
		}
	})
	if !first {
		return ErrClosed
	}
	if r.sink == nil {
		return nil
	}
	select {
	case <-r.sinkDone:
		r.sinkCancel()
		return nil
	case <-ctx.Done():
		r.sinkCancel()
		return ctx.Err()
	}
}

// DumpState writes everything the recorder holds in its aggregates as
// JSON: every label of every series in every time bucket, with its
// counters. It is for debugging and for tests that search all recorded
// data for secrets; the format is not stable.
func (r *Recorder) DumpState(w io.Writer) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.agg.dump(w)
}

// monoClock is the default clock: the wall time of an anchor plus the
// monotonic time elapsed since, which costs one clock read instead of two
// (time.Now reads the wall and the monotonic clock). The recorder
// re-anchors it at every drain, so a step of the wall clock shows within
// one DrainInterval.
type monoClock struct {
	base atomic.Pointer[time.Time]
}

func newMonoClock() *monoClock {
	c := new(monoClock)
	c.anchor()
	return c
}

func (c *monoClock) anchor() {
	t := time.Now()
	c.base.Store(&t)
}

func (c *monoClock) now() time.Time {
	b := c.base.Load()
	return b.Add(time.Since(*b))
}
