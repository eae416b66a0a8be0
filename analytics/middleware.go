package analytics

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Middleware records every call that passes through it: after the handler
// returns (or panics: recorded as 500, and the panic goes on), it queues
// one [Call] and returns at once. It never reads headers, the query or
// the body, and never records the raw path.
//
// Place it outermost (after panic recovery), so that it times the whole
// stack and sees the calls that authentication refuses. It learns the
// route pattern, in this order, from:
//
//  1. [SetRoute], called by anything below it for this request;
//  2. [Recorder.Annotate], placed inside the authentication stage;
//  3. the request it passed down, when an *http.ServeMux received that very
//     request (Go's ServeMux sets Request.Pattern in place): the case when
//     Middleware wraps the mux directly or through stages that keep the
//     request as is;
//  4. [Config.Routes];
//  5. otherwise the call is labelled [RouteUnmatched].
//
// It learns the caller from [SetCaller] or [Recorder.Annotate], else from
// [Config.Identify] applied to its own request. Patterns of CONNECT
// requests are not trusted (a ServeMux may report a path for them).
func (r *Recorder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := r.now()
		st := &callState{Context: req.Context()}
		st.w.ResponseWriter = w
		req = req.WithContext(st)
		completed := false
		defer func() {
			status := st.w.status
			switch {
			case !completed:
				status = http.StatusInternalServerError
			case status == 0:
				status = http.StatusOK
			}
			r.recordCall(st, req, start, r.now().Sub(start), status)
		}()
		next.ServeHTTP(&st.w, req)
		completed = true
	})
}

// Annotate is the inner half of [Recorder.Middleware]: place it where the
// request is authenticated and about to be routed (just outside the
// application's ServeMux) or routed (around a route's handler). It gives
// the recording middleware above it the caller, from [Config.Identify]
// applied to the request as Annotate sees it, and the route pattern the
// ServeMux set. Without a recording middleware above, it only calls next.
func (r *Recorder) Annotate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		st := stateFrom(req.Context())
		if st == nil {
			next.ServeHTTP(w, req)
			return
		}
		if r.identify != nil {
			if c := r.identify(req); !c.IsZero() {
				st.setCaller(c)
			}
		}
		if p := patternOf(req); p != "" {
			st.setRoute(p) // Annotate sits inside the mux.
		}
		next.ServeHTTP(w, req)
		if p := patternOf(req); p != "" {
			st.setRouteIfUnset(p) // a mux below set the pattern in place.
		}
	})
}

// SetRoute tells the recording middleware, through ctx, which route
// pattern serves the request: for routers other than http.ServeMux. Pass a
// pattern ("/trips/{id}"), never the raw path. It does nothing when ctx
// does not belong to a request being recorded.
func SetRoute(ctx context.Context, pattern string) {
	if st := stateFrom(ctx); st != nil && pattern != "" {
		st.setRoute(pattern)
	}
}

// SetCaller tells the recording middleware, through ctx, who makes the
// request. It does nothing when ctx does not belong to a request being
// recorded.
func SetCaller(ctx context.Context, c Caller) {
	if st := stateFrom(ctx); st != nil {
		st.setCaller(c)
	}
}

// recordCall builds the call's event and queues it: everything the
// recorder does on the request path after the handler.
func (r *Recorder) recordCall(st *callState, req *http.Request, start time.Time, dur time.Duration, status int) {
	route, caller, hasCaller := st.seal()
	if route == "" {
		route = patternOf(req)
	}
	if route == "" && r.routes != nil && req.Method != http.MethodConnect {
		_, route = r.routes.Handler(req)
	}
	if route == "" {
		route = RouteUnmatched
	}
	if !hasCaller && r.identify != nil {
		caller = r.identify(req)
	}
	s, pos, ok := r.claim()
	if !ok {
		return
	}
	s.it = item{
		time:     start,
		caller:   caller,
		route:    route,
		method:   normMethod(req.Method),
		dur:      dur,
		bytesIn:  max(req.ContentLength, 0),
		bytesOut: st.w.bytes,
		status:   int32(status),
	}
	r.publish(s, pos)
}

// patternOf returns the pattern a ServeMux set on req, if it can be trusted.
func patternOf(req *http.Request) string {
	if req.Method == http.MethodConnect {
		return ""
	}
	return req.Pattern
}

// normMethod maps a request method to a constant, so that an attacker's
// invented methods cannot add labels.
func normMethod(m string) string {
	switch m {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return "OTHER"
}

type stateKey struct{}

// callState is the per-request slot the recording middleware shares with
// the stages below it. It is the request's context itself (saving an
// allocation): Value answers for stateKey and defers everything else to
// the parent context.
type callState struct {
	context.Context
	w         recWriter
	mu        sync.Mutex
	route     string
	caller    Caller
	hasCaller bool
	sealed    bool // recorded: later writes are ignored
}

func (s *callState) Value(key any) any {
	if key == (stateKey{}) {
		return s
	}
	return s.Context.Value(key)
}

func stateFrom(ctx context.Context) *callState {
	if ctx == nil {
		return nil
	}
	st, _ := ctx.Value(stateKey{}).(*callState)
	return st
}

func (s *callState) setRoute(p string) {
	s.mu.Lock()
	if !s.sealed {
		s.route = p
	}
	s.mu.Unlock()
}

func (s *callState) setRouteIfUnset(p string) {
	s.mu.Lock()
	if !s.sealed && s.route == "" {
		s.route = p
	}
	s.mu.Unlock()
}

func (s *callState) setCaller(c Caller) {
	s.mu.Lock()
	if !s.sealed {
		s.caller, s.hasCaller = c, true
	}
	s.mu.Unlock()
}

func (s *callState) getCaller() (Caller, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caller, s.hasCaller
}

func (s *callState) seal() (string, Caller, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = true
	return s.route, s.caller, s.hasCaller
}

// recWriter records the status and counts the body bytes. It keeps the
// wrapped writer's optional abilities reachable: Flush and Hijack
// directly, the rest through Unwrap (http.ResponseController).
type recWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

var (
	_ http.Flusher  = (*recWriter)(nil)
	_ http.Hijacker = (*recWriter)(nil)
	_ io.ReaderFrom = (*recWriter)(nil)
)

func (w *recWriter) WriteHeader(code int) {
	// 1xx other than 101 are informational: the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += n
	return n, err
}

func (w *recWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *recWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
