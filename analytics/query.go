package analytics

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CallDims are the dimensions of calls, usable in [Query] GroupBy and
// Filter for a summary. "status" values are status classes: "2xx".."5xx"
// ("other" for a status outside 100..599).
var CallDims = []string{"app", "version", "platform", "channel", "route", "method", "status"}

// SecurityDims are the dimensions of security outcomes, usable in [Query]
// GroupBy and Filter for a security report. "kind" values are [Kind] names.
var SecurityDims = []string{"kind", "name", "reason", "app", "version", "platform", "channel"}

const (
	maxPoints    = 1000
	defaultLimit = 20
	maxLimit     = 1000
	defaultRange = 24 * time.Hour
	autoMinute   = 6 * time.Hour
)

// Query asks for calls ([Recorder.Summary]) or security outcomes
// ([Recorder.SecurityReport]) over a time range.
type Query struct {
	// Since and Until bound the range; it is widened to whole buckets of
	// the resolution, from the start of the bucket holding Since to the end
	// of the bucket holding Until. Zero Until: now. Zero Since: 24 hours
	// before Until.
	Since, Until time.Time
	// Resolution of the time series. Zero: Auto.
	Resolution Resolution
	// GroupBy lists the dimensions the groups are keyed by: from
	// [CallDims] for a summary, [SecurityDims] for a security report.
	// Empty: one group for all calls; for security outcomes, "kind".
	GroupBy []string
	// Filter keeps only events whose dimension has the given value. Nil:
	// all events.
	Filter map[string]string
	// Limit is how many groups (largest first), routes, devices and
	// versions are returned; the other groups are counted in OtherGroups.
	// Zero: 20. At most 1000.
	Limit int
}

// Window describes the range and grouping an answer covers; it heads both
// [Summary] and [SecurityReport].
type Window struct {
	// Since and Until are the query's range widened to whole buckets.
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
	// OtherGroups counts the groups beyond the limit (they are in the
	// totals).
	OtherGroups int `json:"other_groups"`
	// Recorder is the recorder's counters when the answer was made.
	Recorder Stats `json:"recorder"`
}

// Summary answers [Recorder.Summary]. It is also the JSON body of
// GET <prefix>/analytics/api/summary.
type Summary struct {
	Window
	// Total covers every call in range that the filter keeps.
	Total CallTotals `json:"total"`
	// Series counts those calls per point of Times.
	Series []int64 `json:"series"`
	// Groups are the largest groups, by calls, with their series.
	Groups []CallGroup `json:"groups"`
	// Routes are the busiest routes, with their latencies.
	Routes []RouteTotals `json:"routes"`
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

// SecurityReport answers [Recorder.SecurityReport]. It is also the JSON
// body of GET <prefix>/analytics/api/security.
type SecurityReport struct {
	Window
	// Total counts every outcome in range that the filter keeps.
	Total int64 `json:"total"`
	// Kinds counts outcomes by kind; every kind is present.
	Kinds map[string]int64 `json:"kinds"`
	// Refusals counts the outcomes that refused a client.
	Refusals int64           `json:"refusals"`
	Groups   []SecurityGroup `json:"groups"`
	// RefusedDevices are the devices refused most often, counting every
	// kind of refusal ([Kind.Refusal]).
	RefusedDevices []RefusedDevice `json:"refused_devices"`
	// RefusedVersions are the app versions most often refused by the
	// version policy (version_refused).
	RefusedVersions []RefusedVersion `json:"refused_versions"`
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

// window heads an answer to q over s.
func (r *Recorder) window(s span, q *Query, groupBy []string) Window {
	return Window{Since: s.since, Until: s.until, Resolution: s.res, Retained: s.retained,
		GroupBy: nonNil(groupBy), Filter: q.Filter, Times: s.times(), Recorder: r.statsLocked()}
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

// plan is a validated query: the positions of its group_by dimensions,
// its filter by position, its limit and its range.
type plan struct {
	group  []int
	filter []*string
	limit  int
	span   span
}

// compile validates q for dims. The caller holds r.mu.
func (r *Recorder) compile(groupBy []string, q *Query, dims []string) (plan, error) {
	var pl plan
	var err error
	if pl.group, err = dimIndexes("group_by", groupBy, dims); err != nil {
		return pl, err
	}
	if pl.filter, err = filterOf(q.Filter, dims); err != nil {
		return pl, err
	}
	if pl.limit, err = limitOf(q.Limit); err != nil {
		return pl, err
	}
	pl.span, err = r.span(q.Since, q.Until, q.Resolution)
	return pl, err
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

var classLabels = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classLabel(c uint8) string {
	if int(c) >= len(classLabels) {
		return classLabels[0]
	}
	return classLabels[c]
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

// addCell adds one cell of series class.
func (a *callAcc) addCell(class uint8, c *callCell) {
	a.count += c.count
	a.durSum += c.durSum
	a.bytesIn += c.bytesIn
	a.bytesOut += c.bytesOut
	a.status[class] += c.count
	c.hist.addTo(&a.hist)
}

// merge adds b's counters (not its series) to a.
func (a *callAcc) merge(b *callAcc) {
	a.count += b.count
	a.durSum += b.durSum
	a.bytesIn += b.bytesIn
	a.bytesOut += b.bytesOut
	for i, n := range b.status {
		a.status[i] += n
	}
	for i, n := range b.hist {
		a.hist[i] += n
	}
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

// seriesAcc accumulates one call series over the range, with the group it
// belongs to.
type seriesAcc struct {
	callAcc
	match bool
	group *callAcc
}

// Summary answers a query about calls from the aggregates. It first sums
// each series over the range (indexing by series id, without hashing
// labels), then groups the series.
func (r *Recorder) Summary(q Query) (*Summary, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	pl, err := r.compile(q.GroupBy, &q, CallDims)
	if err != nil {
		return nil, err
	}
	group, filter, limit, sp := pl.group, pl.filter, pl.limit, pl.span
	a := r.agg
	t := a.table(sp.res)
	perSeries := make([]*seriesAcc, len(a.keys))
	groups := make(map[[7]string]*callAcc)
	series := make([]int64, sp.points)
	step := int64(sp.res.step() / time.Second)
	for p := range sp.points {
		b := t.buckets[sp.since.Unix()+int64(p)*step]
		if b == nil {
			continue
		}
		for i := range b.calls {
			c := &b.calls[i]
			sa := perSeries[c.id]
			if sa == nil {
				sa = new(seriesAcc)
				d := a.keys[c.id].dims()
				if sa.match = matches(&d, filter); sa.match {
					gk := groupKey(&d, group)
					if sa.group = groups[gk]; sa.group == nil {
						sa.group = new(callAcc)
						groups[gk] = sa.group
					}
				}
				perSeries[c.id] = sa
			}
			if !sa.match {
				continue
			}
			sa.addCell(a.keys[c.id].class, c)
			series[p] += c.count
		}
	}
	var total callAcc
	routes := make(map[string]*callAcc)
	for id, sa := range perSeries {
		if sa == nil || !sa.match {
			continue
		}
		sa.group.merge(&sa.callAcc)
		total.merge(&sa.callAcc)
		route := a.keys[id].route
		ra := routes[route]
		if ra == nil {
			ra = new(callAcc)
			routes[route] = ra
		}
		ra.merge(&sa.callAcc)
	}
	s := &Summary{Window: r.window(sp, &q, q.GroupBy),
		Total: total.totals(), Series: series, Groups: []CallGroup{}, Routes: []RouteTotals{}}
	keys := topKeys(groups, func(a *callAcc) int64 { return a.count }, limit, compare7)
	s.OtherGroups = len(groups) - len(keys)
	// A second, cheap pass draws the series of the groups returned only:
	// series for every group could take points x groups of memory.
	for _, gk := range keys {
		groups[gk].series = make([]int64, sp.points)
	}
	for p := range sp.points {
		if b := t.buckets[sp.since.Unix()+int64(p)*step]; b != nil {
			for i := range b.calls {
				if sa := perSeries[b.calls[i].id]; sa.match && sa.group.series != nil {
					sa.group.series[p] += b.calls[i].count
				}
			}
		}
	}
	for _, gk := range keys {
		g := groups[gk]
		s.Groups = append(s.Groups, CallGroup{Key: keyMap(&gk, group, CallDims), CallTotals: g.totals(), Series: g.series})
	}
	for _, rk := range topKeys(routes, func(a *callAcc) int64 { return a.count }, limit, strings.Compare) {
		s.Routes = append(s.Routes, RouteTotals{Route: rk, CallTotals: routes[rk].totals()})
	}
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
func (r *Recorder) SecurityReport(q Query) (*SecurityReport, error) {
	groupBy := q.GroupBy
	if len(groupBy) == 0 {
		groupBy = []string{"kind"}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	pl, err := r.compile(groupBy, &q, SecurityDims)
	if err != nil {
		return nil, err
	}
	group, filter, limit, sp := pl.group, pl.filter, pl.limit, pl.span
	t := r.agg.table(sp.res)
	rep := &SecurityReport{Window: r.window(sp, &q, groupBy),
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
			if k.kind != VersionRefused {
				continue
			}
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
