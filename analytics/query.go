package analytics

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dimensions of the calls table, usable in SummaryQuery.GroupBy and
// SummaryQuery.Filter. "status" values are status classes: "2xx".."5xx"
// ("other" for a status outside 100..599).
var CallDims = []string{"app", "version", "platform", "channel", "route", "method", "status"}

// Dimensions of the security table, usable in SecurityQuery.GroupBy and
// SecurityQuery.Filter. "kind" values are [Kind] names.
var SecurityDims = []string{"kind", "name", "reason", "app", "version", "platform", "channel"}

const (
	maxPoints    = 1000
	defaultLimit = 20
	maxLimit     = 1000
	defaultRange = 24 * time.Hour
	autoMinute   = 6 * time.Hour
)

// SummaryQuery asks for call counts and latencies over a time range.
type SummaryQuery struct {
	// Since and Until bound the range; it is widened to whole buckets of
	// the resolution, from the start of the bucket holding Since to the end
	// of the bucket holding Until. Zero Until: now. Zero Since: 24 hours
	// before Until.
	Since, Until time.Time
	// Resolution of the time series. Zero: Auto.
	Resolution Resolution
	// GroupBy lists the dimensions (from [CallDims]) the groups are keyed
	// by. Empty: one group for all calls.
	GroupBy []string
	// Filter keeps only calls whose dimension (from [CallDims]) has the
	// given value. Nil: all calls.
	Filter map[string]string
	// Limit is how many groups (largest first) and routes are returned;
	// the rest are counted in OtherGroups. Zero: 20. At most 1000.
	Limit int
}

// Summary answers a [SummaryQuery]. It is also the JSON body of
// GET <prefix>/analytics/api/summary.
type Summary struct {
	Since      time.Time  `json:"since"`
	Until      time.Time  `json:"until"`
	Resolution Resolution `json:"resolution"`
	// Retained is the start of the oldest bucket kept at this resolution:
	// nothing before it can be counted.
	Retained time.Time         `json:"retained_since"`
	GroupBy  []string          `json:"group_by"`
	Filter   map[string]string `json:"filter,omitempty"`
	// Times are the start times of the series' points.
	Times []time.Time `json:"times"`
	// Total covers every call in range that the filter keeps.
	Total CallTotals `json:"total"`
	// Series counts those calls per point of Times.
	Series []int64 `json:"series"`
	// Groups are the largest groups, by calls, with their series.
	Groups []CallGroup `json:"groups"`
	// OtherGroups counts the groups beyond Limit (included in Total).
	OtherGroups int `json:"other_groups"`
	// Routes are the busiest routes, with their latencies.
	Routes []RouteTotals `json:"routes"`
	// Recorder is the recorder's counters when the summary was made.
	Recorder Stats `json:"recorder"`
}

// CallTotals are the counters of a set of calls.
type CallTotals struct {
	Calls int64 `json:"calls"`
	// Status counts calls by status class: "2xx", "4xx"...
	Status   map[string]int64 `json:"status"`
	Latency  Latency          `json:"latency_ms"`
	BytesIn  int64            `json:"bytes_in"`
	BytesOut int64            `json:"bytes_out"`
}

// Latency is in milliseconds. Percentiles come from a histogram with
// buckets 1.33 to 1.5 times apart, interpolated within the bucket: they
// are within about 25% of the exact value.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
}

// CallGroup is one group of a [Summary].
type CallGroup struct {
	// Key maps each GroupBy dimension to this group's value.
	Key map[string]string `json:"key"`
	CallTotals
	// Series counts calls per point of Summary.Times.
	Series []int64 `json:"series"`
}

// RouteTotals are the counters of one route.
type RouteTotals struct {
	Route string `json:"route"`
	CallTotals
}

// SecurityQuery asks for security outcomes over a time range.
type SecurityQuery struct {
	// Since, Until and Resolution work as in [SummaryQuery].
	Since, Until time.Time
	Resolution   Resolution
	// GroupBy lists dimensions from [SecurityDims]. Empty: "kind".
	GroupBy []string
	// Filter keeps outcomes whose dimension has the given value.
	Filter map[string]string
	// Limit is how many groups, devices and versions are returned. Zero:
	// 20. At most 1000.
	Limit int
}

// SecurityReport answers a [SecurityQuery]. It is also the JSON body of
// GET <prefix>/analytics/api/security.
type SecurityReport struct {
	Since      time.Time         `json:"since"`
	Until      time.Time         `json:"until"`
	Resolution Resolution        `json:"resolution"`
	Retained   time.Time         `json:"retained_since"`
	GroupBy    []string          `json:"group_by"`
	Filter     map[string]string `json:"filter,omitempty"`
	Times      []time.Time       `json:"times"`
	// Total counts every outcome in range that the filter keeps.
	Total int64 `json:"total"`
	// Kinds counts outcomes by kind; every kind is present.
	Kinds map[string]int64 `json:"kinds"`
	// Refusals counts the outcomes that refused a client.
	Refusals    int64           `json:"refusals"`
	Groups      []SecurityGroup `json:"groups"`
	OtherGroups int             `json:"other_groups"`
	// RefusedDevices are the devices refused most often.
	RefusedDevices []RefusedDevice `json:"refused_devices"`
	// RefusedVersions are the app versions refused most often.
	RefusedVersions []RefusedVersion `json:"refused_versions"`
	Recorder        Stats            `json:"recorder"`
}

// SecurityGroup is one group of a [SecurityReport].
type SecurityGroup struct {
	Key    map[string]string `json:"key"`
	Count  int64             `json:"count"`
	Series []int64           `json:"series"`
}

// RefusedDevice counts the refusals of one device (by pseudonym).
type RefusedDevice struct {
	Device   string `json:"device"`
	App      string `json:"app"`
	Platform string `json:"platform"`
	Count    int64  `json:"count"`
	// Kinds counts the refusals by kind.
	Kinds map[string]int64 `json:"kinds"`
}

// RefusedVersion counts the refusals of one app version.
type RefusedVersion struct {
	App      string           `json:"app"`
	Platform string           `json:"platform"`
	Version  string           `json:"version"`
	Count    int64            `json:"count"`
	Kinds    map[string]int64 `json:"kinds"`
}

// span is a validated query range.
type span struct {
	res          Resolution
	since, until time.Time // bucket-aligned, UTC
	retained     time.Time // the oldest bucket kept
	points       int
}

func (r *Recorder) span(since, until time.Time, res Resolution) (span, error) {
	now := r.now()
	if until.IsZero() {
		until = now
	}
	if since.IsZero() {
		since = until.Add(-defaultRange)
	}
	if !since.Before(until) {
		return span{}, fmt.Errorf("%w: since (%s) must be before until (%s)", ErrInvalidQuery,
			since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	if res == Auto {
		res = Hour
		minuteOldest := time.Unix(r.agg.tables[0].oldest(now), 0)
		if until.Sub(since) <= autoMinute && !since.Before(minuteOldest) {
			res = Minute
		}
	}
	if res != Minute && res != Hour {
		return span{}, fmt.Errorf("%w: unknown resolution %d", ErrInvalidQuery, res)
	}
	step := int64(res.step() / time.Second)
	lo := floorDiv(since.Unix(), step) * step
	hi := floorDiv(until.Unix(), step)*step + step
	points := (hi - lo) / step
	if points > maxPoints {
		return span{}, fmt.Errorf("%w: the range holds %d %s points, more than %d; narrow it or use resolution=hour",
			ErrInvalidQuery, points, res, maxPoints)
	}
	return span{res: res, since: time.Unix(lo, 0).UTC(), until: time.Unix(hi, 0).UTC(), points: int(points),
		retained: time.Unix(r.agg.table(res).oldest(now), 0).UTC()}, nil
}

func (s span) times() []time.Time {
	ts := make([]time.Time, s.points)
	for i := range ts {
		ts[i] = s.since.Add(time.Duration(i) * s.res.step())
	}
	return ts
}

// dimIndexes validates dimension names against known and returns their
// positions in it.
func dimIndexes(what string, names []string, known []string) ([]int, error) {
	idx := make([]int, 0, len(names))
	for _, n := range names {
		i := slices.Index(known, n)
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown %s dimension %q; known: %s", ErrInvalidQuery, what, clip(n), strings.Join(known, ", "))
		}
		if slices.Contains(idx, i) {
			return nil, fmt.Errorf("%w: %s dimension %q given twice", ErrInvalidQuery, what, n)
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// filterOf validates a filter and returns it as an array indexed like known
// (nil entries: no condition).
func filterOf(f map[string]string, known []string) ([]*string, error) {
	out := make([]*string, len(known))
	for k, v := range f {
		i := slices.Index(known, k)
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown filter dimension %q; known: %s", ErrInvalidQuery, clip(k), strings.Join(known, ", "))
		}
		out[i] = &v
	}
	return out, nil
}

func limitOf(n int) (int, error) {
	switch {
	case n == 0:
		return defaultLimit, nil
	case n < 0 || n > maxLimit:
		return 0, fmt.Errorf("%w: limit %d is not within 1..%d", ErrInvalidQuery, n, maxLimit)
	}
	return n, nil
}

// clip shortens a caller-given string for an error message.
func clip(s string) string {
	s = Scrub(s)
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func classLabel(c uint8) string {
	if c == 0 {
		return "other"
	}
	return strconv.Itoa(int(c)) + "xx"
}

func (k *callKey) dims() [7]string {
	return [7]string{k.app, k.version, k.platform, k.channel, k.route, k.method, classLabel(k.class)}
}

func (k *secKey) dims() [7]string {
	return [7]string{k.kind.String(), k.name, k.reason, k.app, k.version, k.platform, k.channel}
}

// matches reports whether dims satisfies filter.
func matches(d *[7]string, filter []*string) bool {
	for i, f := range filter {
		if f != nil && d[i] != *f {
			return false
		}
	}
	return true
}

// groupKey keeps the grouped dimensions of d and blanks the rest.
func groupKey(d *[7]string, group []int) [7]string {
	var g [7]string
	for _, i := range group {
		g[i] = d[i]
	}
	return g
}

func keyMap(g *[7]string, group []int, known []string) map[string]string {
	m := make(map[string]string, len(group))
	for _, i := range group {
		m[known[i]] = g[i]
	}
	return m
}

// callAcc accumulates calls.
type callAcc struct {
	count, durSum, bytesIn, bytesOut int64
	status                           [6]int64
	hist                             [histBuckets]uint64
	series                           []int64
}

func (a *callAcc) add(k *callKey, c *callCell) {
	a.count += c.count
	a.durSum += c.durSum
	a.bytesIn += c.bytesIn
	a.bytesOut += c.bytesOut
	a.status[k.class] += c.count
	c.hist.addTo(&a.hist)
}

func (a *callAcc) totals() CallTotals {
	t := CallTotals{Calls: a.count, BytesIn: a.bytesIn, BytesOut: a.bytesOut, Status: make(map[string]int64)}
	for c, n := range a.status {
		if n > 0 {
			t.Status[classLabel(uint8(c))] = n
		}
	}
	if a.count > 0 {
		ms := func(ns float64) float64 { return round3(ns / 1e6) }
		t.Latency = Latency{
			Mean: ms(float64(a.durSum) / float64(a.count)),
			P50:  ms(quantile(&a.hist, uint64(a.count), 0.50)),
			P95:  ms(quantile(&a.hist, uint64(a.count), 0.95)),
			P99:  ms(quantile(&a.hist, uint64(a.count), 0.99)),
		}
	}
	return t
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}

// Summary answers a query about calls from the aggregates.
func (r *Recorder) Summary(q SummaryQuery) (*Summary, error) {
	group, err := dimIndexes("group_by", q.GroupBy, CallDims)
	if err != nil {
		return nil, err
	}
	filter, err := filterOf(q.Filter, CallDims)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(q.Limit)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	sp, err := r.span(q.Since, q.Until, q.Resolution)
	if err != nil {
		return nil, err
	}
	t := r.agg.table(sp.res)
	var total callAcc
	groups := make(map[[7]string]*callAcc)
	routes := make(map[string]*callAcc)
	series := make([]int64, sp.points)
	step := int64(sp.res.step() / time.Second)
	for p := range sp.points {
		b := t.buckets[sp.since.Unix()+int64(p)*step]
		if b == nil {
			continue
		}
		for k, c := range b.calls {
			d := k.dims()
			if !matches(&d, filter) {
				continue
			}
			total.add(&k, c)
			series[p] += c.count
			gk := groupKey(&d, group)
			g := groups[gk]
			if g == nil {
				g = &callAcc{series: make([]int64, sp.points)}
				groups[gk] = g
			}
			g.add(&k, c)
			g.series[p] += c.count
			ra := routes[k.route]
			if ra == nil {
				ra = new(callAcc)
				routes[k.route] = ra
			}
			ra.add(&k, c)
		}
	}
	s := &Summary{
		Since: sp.since, Until: sp.until, Resolution: sp.res, Retained: sp.retained,
		GroupBy: nonNil(q.GroupBy), Filter: q.Filter, Times: sp.times(),
		Total: total.totals(), Series: series, Groups: []CallGroup{}, Routes: []RouteTotals{},
	}
	keys := topKeys(groups, func(a *callAcc) int64 { return a.count }, limit, compare7)
	s.OtherGroups = len(groups) - len(keys)
	for _, gk := range keys {
		g := groups[gk]
		s.Groups = append(s.Groups, CallGroup{Key: keyMap(&gk, group, CallDims), CallTotals: g.totals(), Series: g.series})
	}
	for _, rk := range topKeys(routes, func(a *callAcc) int64 { return a.count }, limit, strings.Compare) {
		s.Routes = append(s.Routes, RouteTotals{Route: rk, CallTotals: routes[rk].totals()})
	}
	s.Recorder = r.statsLocked()
	return s, nil
}

// statsLocked is Stats for a caller holding r.mu.
func (r *Recorder) statsLocked() Stats {
	return Stats{
		Aggregated: r.agg.aggregated, Late: r.agg.late, Overflow: r.agg.overflow,
		Dropped: r.dropped.Load(), Queued: r.queue.len(),
		SinkDropped: r.sinkDropped.Load(), SinkErrors: r.sinkErrors.Load(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// topKeys returns the n keys of m with the largest size, largest first,
// ties broken by key order so that answers are stable.
func topKeys[K comparable, V any](m map[K]V, size func(V) int64, n int, order func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		if c := cmp.Compare(size(m[b]), size(m[a])); c != 0 {
			return c
		}
		return order(a, b)
	})
	return keys[:min(n, len(keys))]
}

func compare7(a, b [7]string) int { return slices.Compare(a[:], b[:]) }

// secAcc accumulates security outcomes of one group.
type secAcc struct {
	count  int64
	series []int64
}

// refAcc accumulates refusals of one device or version.
type refAcc struct {
	count int64
	kinds map[string]int64
}

func (a *refAcc) add(k Kind, n int64) {
	a.count += n
	if a.kinds == nil {
		a.kinds = make(map[string]int64)
	}
	a.kinds[k.String()] += n
}

// SecurityReport answers a query about security outcomes.
func (r *Recorder) SecurityReport(q SecurityQuery) (*SecurityReport, error) {
	if len(q.GroupBy) == 0 {
		q.GroupBy = []string{"kind"}
	}
	group, err := dimIndexes("group_by", q.GroupBy, SecurityDims)
	if err != nil {
		return nil, err
	}
	filter, err := filterOf(q.Filter, SecurityDims)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(q.Limit)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	sp, err := r.span(q.Since, q.Until, q.Resolution)
	if err != nil {
		return nil, err
	}
	t := r.agg.table(sp.res)
	rep := &SecurityReport{
		Since: sp.since, Until: sp.until, Resolution: sp.res, Retained: sp.retained,
		GroupBy: q.GroupBy, Filter: q.Filter, Times: sp.times(),
		Kinds: make(map[string]int64), Groups: []SecurityGroup{},
		RefusedDevices: []RefusedDevice{}, RefusedVersions: []RefusedVersion{},
	}
	for _, k := range Kinds() {
		rep.Kinds[k.String()] = 0
	}
	groups := make(map[[7]string]*secAcc)
	type devKey struct{ device, app, platform string }
	type verKey struct{ app, platform, version string }
	devices := make(map[devKey]*refAcc)
	versions := make(map[verKey]*refAcc)
	step := int64(sp.res.step() / time.Second)
	for p := range sp.points {
		b := t.buckets[sp.since.Unix()+int64(p)*step]
		if b == nil {
			continue
		}
		for k, n := range b.security {
			d := k.dims()
			if !matches(&d, filter) {
				continue
			}
			rep.Total += n
			rep.Kinds[k.kind.String()] += n
			if k.kind.Refusal() {
				rep.Refusals += n
			}
			gk := groupKey(&d, group)
			g := groups[gk]
			if g == nil {
				g = &secAcc{series: make([]int64, sp.points)}
				groups[gk] = g
			}
			g.count += n
			g.series[p] += n
		}
		for k, n := range b.refusals {
			d := k.dims()
			if !matches(&d, filter) {
				continue
			}
			dk := devKey{k.device, k.app, k.platform}
			if devices[dk] == nil {
				devices[dk] = new(refAcc)
			}
			devices[dk].add(k.kind, n)
			vk := verKey{k.app, k.platform, k.version}
			if versions[vk] == nil {
				versions[vk] = new(refAcc)
			}
			versions[vk].add(k.kind, n)
		}
	}
	keys := topKeys(groups, func(a *secAcc) int64 { return a.count }, limit, compare7)
	rep.OtherGroups = len(groups) - len(keys)
	for _, gk := range keys {
		rep.Groups = append(rep.Groups, SecurityGroup{Key: keyMap(&gk, group, SecurityDims), Count: groups[gk].count, Series: groups[gk].series})
	}
	rep.RefusedDevices = topRefusals(devices, limit, func(a, b devKey) int {
		return cmp.Or(strings.Compare(a.device, b.device), strings.Compare(a.app, b.app), strings.Compare(a.platform, b.platform))
	}, func(k devKey, a *refAcc) RefusedDevice {
		return RefusedDevice{Device: k.device, App: k.app, Platform: k.platform, Count: a.count, Kinds: a.kinds}
	})
	rep.RefusedVersions = topRefusals(versions, limit, func(a, b verKey) int {
		return cmp.Or(strings.Compare(a.app, b.app), strings.Compare(a.platform, b.platform), strings.Compare(a.version, b.version))
	}, func(k verKey, a *refAcc) RefusedVersion {
		return RefusedVersion{App: k.app, Platform: k.platform, Version: k.version, Count: a.count, Kinds: a.kinds}
	})
	rep.Recorder = r.statsLocked()
	return rep, nil
}

// topRefusals returns the n largest entries of m, largest first.
func topRefusals[K comparable, T any](m map[K]*refAcc, n int, order func(a, b K) int, conv func(K, *refAcc) T) []T {
	out := []T{}
	for _, k := range topKeys(m, func(a *refAcc) int64 { return a.count }, n, order) {
		out = append(out, conv(k, m[k]))
	}
	return out
}
