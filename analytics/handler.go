package analytics

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
)

// HandlerConfig configures the query API and dashboard.
type HandlerConfig struct {
	// Authorize wraps every analytics endpoint with the host application's
	// access control: it must answer requests that may not read analytics
	// itself (401 or 403) and call next only for those that may. Analytics
	// reveal who uses which app from which device: treat them as
	// operator-only. Required: [NewHandler] refuses a nil Authorize.
	Authorize func(next http.Handler) http.Handler
	// Prefix is the path the analytics endpoints live under: "" serves
	// /analytics/..., "/moat" serves /moat/analytics/.... It must be empty
	// or start with "/" and not end with "/".
	Prefix string
}

// NewHandler returns the handler for the query API and the dashboard:
//
//	GET <prefix>/analytics/                 the dashboard (HTML with SVG charts)
//	GET <prefix>/analytics/api/summary      calls: a [Summary] as JSON
//	GET <prefix>/analytics/api/security     security outcomes: a [SecurityReport] as JSON
//
// Mount it on the host's mux at <prefix>/analytics/. Every request first
// goes through cfg.Authorize.
//
// The summary endpoint takes since, until (RFC 3339, Unix seconds, "now"
// or a negative duration such as -24h or -7d), resolution (auto, minute,
// hour), group_by (a comma-separated list of [CallDims]), limit, and one
// filter parameter per dimension (app=travel&status=5xx). The security
// endpoint takes the same with [SecurityDims]. An unknown parameter, an
// unknown dimension or a bad time is answered 400 with an RFC 6749 style
// error body whose error_description says what is wrong.
func NewHandler(rec *Recorder, cfg HandlerConfig) (http.Handler, error) {
	if rec == nil {
		return nil, fmt.Errorf("%w: NewHandler needs a recorder", ErrInvalidConfig)
	}
	if cfg.Authorize == nil {
		return nil, ErrNoAuthorizer
	}
	p := cfg.Prefix
	if p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "{} ")) {
		return nil, fmt.Errorf("%w: Prefix %q must be empty or start with / and not end with /", ErrInvalidConfig, p)
	}
	h := &handler{rec: rec}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/analytics/{$}", h.dashboard)
	mux.HandleFunc("GET "+p+"/analytics/api/summary", h.summary)
	mux.HandleFunc("GET "+p+"/analytics/api/security", h.security)
	mux.HandleFunc(p+"/analytics/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, http.StatusNotFound, "not_found", "no such analytics endpoint", nil)
	})
	protected := cfg.Authorize(mux)
	if protected == nil {
		return nil, fmt.Errorf("%w: Authorize returned a nil handler", ErrInvalidConfig)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		protected.ServeHTTP(w, r)
	}), nil
}

type handler struct {
	rec *Recorder
}

// queryParams are the parameters a query endpoint understands besides its
// dimension filters.
var queryParams = []string{"since", "until", "resolution", "group_by", "limit"}

// parseQuery reads and validates an endpoint's query string. The errors'
// messages are safe to send back.
func parseQuery(values url.Values, dims []string, now time.Time) (Query, error) {
	var q Query
	for name, vs := range values {
		if !slices.Contains(queryParams, name) && !slices.Contains(dims, name) {
			return q, fmt.Errorf("%w: unknown parameter %q; known: %s, and the filters %s", ErrInvalidQuery,
				clip(name), strings.Join(queryParams, ", "), strings.Join(dims, ", "))
		}
		if len(vs) != 1 {
			return q, fmt.Errorf("%w: parameter %q given %d times", ErrInvalidQuery, name, len(vs))
		}
	}
	var err error
	if v := values.Get("until"); v != "" {
		if q.Until, err = parseTime("until", v, now); err != nil {
			return q, err
		}
	}
	if v := values.Get("since"); v != "" {
		if q.Since, err = parseTime("since", v, now); err != nil {
			return q, err
		}
	}
	if q.Resolution, err = parseResolution(values.Get("resolution")); err != nil {
		return q, err
	}
	if v := values.Get("group_by"); v != "" {
		q.GroupBy = strings.Split(v, ",")
		for i := range q.GroupBy {
			q.GroupBy[i] = strings.TrimSpace(q.GroupBy[i])
		}
		if _, err := dimIndexes("group_by", q.GroupBy, dims); err != nil {
			return q, err
		}
	}
	if v := values.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return q, fmt.Errorf("%w: limit %q is not a number", ErrInvalidQuery, clip(v))
		}
		if n == 0 {
			n = -1 // an explicit 0 is out of range, not "the default"
		}
		if q.Limit, err = limitOf(n); err != nil {
			return q, fmt.Errorf("%w: limit %s is not within 1..%d", ErrInvalidQuery, clip(v), maxLimit)
		}
	}
	for _, d := range dims {
		if values.Has(d) {
			if q.Filter == nil {
				q.Filter = make(map[string]string)
			}
			q.Filter[d] = values.Get(d)
		}
	}
	return q, nil
}

func parseResolution(s string) (Resolution, error) {
	switch s {
	case "", "auto":
		return Auto, nil
	case "minute":
		return Minute, nil
	case "hour":
		return Hour, nil
	}
	return Auto, fmt.Errorf("%w: resolution %q is not auto, minute or hour", ErrInvalidQuery, clip(s))
}

// parseTime reads a query time: RFC 3339, Unix seconds, "now", or a
// negative duration from now ("-90m", "-24h", "-7d").
func parseTime(name, s string, now time.Time) (time.Time, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s %q %s; use RFC 3339 (2026-01-02T15:04:05Z), Unix seconds, \"now\", or a negative duration such as -24h or -7d",
			ErrInvalidQuery, name, clip(s), why)
	}
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := parseAgo(s[1:])
		if err != nil {
			return time.Time{}, bad("is not a duration")
		}
		return now.Add(-d), nil
	case strings.Trim(s, "0123456789") == "":
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec > 253402300799 { // 9999-12-31
			return time.Time{}, bad("is out of range")
		}
		return time.Unix(sec, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad("is not a time")
	}
	return t, nil
}

// parseAgo parses a positive duration, allowing a whole number of days
// ("7d") besides Go's units.
func parseAgo(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3660 {
			return 0, errors.New("bad days")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d <= 0 || d > 3660*24*time.Hour {
		return 0, errors.New("out of range")
	}
	return d, nil
}

func (h *handler) summary(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, CallDims, func(q Query) (any, error) { return h.rec.Summary(q) })
}

func (h *handler) security(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, SecurityDims, func(q Query) (any, error) { return h.rec.SecurityReport(q) })
}

// answer parses the request's query for dims, runs it and writes the
// answer or the error.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, dims []string, run func(Query) (any, error)) {
	q, err := parseQuery(r.URL.Query(), dims, h.rec.now())
	if err == nil {
		var v any
		if v, err = run(q); err == nil {
			httpjson.Write(w, http.StatusOK, v)
			return
		}
	}
	writeQueryError(w, err)
}

func writeQueryError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrInvalidQuery) {
		msg := strings.TrimPrefix(err.Error(), ErrInvalidQuery.Error()+": ")
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", msg, nil)
		return
	}
	httpjson.WriteError(w, http.StatusInternalServerError, "server_error", "", nil)
}
