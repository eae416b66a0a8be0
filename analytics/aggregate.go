package analytics

import (
	"encoding/json"
	"io"
	"math/bits"
	"slices"
	"time"
)

// Resolution is the width of the time buckets a query reads.
type Resolution int

const (
	// Auto picks Minute for ranges of at most 6 hours that minute buckets
	// still cover, Hour otherwise.
	Auto Resolution = iota
	Minute
	Hour
)

func (r Resolution) step() time.Duration {
	if r == Minute {
		return time.Minute
	}
	return time.Hour
}

// String returns "auto", "minute" or "hour".
func (r Resolution) String() string {
	switch r {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	}
	return "auto"
}

// MarshalText encodes the resolution's name.
func (r Resolution) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes "auto", "minute" or "hour".
func (r *Resolution) UnmarshalText(b []byte) error {
	v, err := parseResolution(string(b))
	*r = v
	return err
}

// unknownLabel stands for an empty label; otherLabel for the series folded
// together by MaxSeries.
const (
	unknownLabel = "unknown"
	otherLabel   = "(other)"
)

func orUnknown(s string) string {
	if s == "" {
		return unknownLabel
	}
	return s
}

// callKey is one series of the calls table.
type callKey struct {
	app, version, platform, channel, route, method string
	class                                          uint8 // status / 100
}

// callCell counts one series of the calls table in one bucket. id is the
// series' callKey, interned in aggregates.keys.
type callCell struct {
	id                               uint32
	count, durSum, bytesIn, bytesOut int64
	hist                             histogram
}

// secKey is one series of the security table.
type secKey struct {
	kind                                          Kind
	name, reason, app, version, platform, channel string
}

// refusalKey is one series of the refusals table: refusals by device.
type refusalKey struct {
	secKey
	device string
}

// bucket holds one minute's or one hour's aggregates. Calls are kept in a
// slice (queries scan it) indexed by series id (ingestion finds cells).
type bucket struct {
	calls    []callCell
	index    map[uint32]int32
	security map[secKey]int64
	refusals map[refusalKey]int64
}

func newBucket() *bucket {
	return &bucket{
		index:    make(map[uint32]int32),
		security: make(map[secKey]int64),
		refusals: make(map[refusalKey]int64),
	}
}

// table is the buckets of one resolution, by start time (Unix seconds).
type table struct {
	step      int64 // seconds
	retention time.Duration
	buckets   map[int64]*bucket
}

// aggregates is the recorder's in-memory store. The recorder guards it
// with its mutex.
//
// Call series keys are interned: each distinct callKey gets a small id,
// counted by the cells that use it and freed when the last one expires, so
// that queries index slices by id instead of hashing label strings.
type aggregates struct {
	tables    [2]table // Minute, Hour
	maxSeries int

	ids  map[callKey]uint32
	keys []callKey // by id
	refs []int32   // cells using each id
	free []uint32  // ids to reuse

	aggregated, late, overflow uint64
}

func newAggregates(minuteRet, hourRet time.Duration, maxSeries int) *aggregates {
	return &aggregates{
		tables: [2]table{
			{step: 60, retention: minuteRet, buckets: make(map[int64]*bucket)},
			{step: 3600, retention: hourRet, buckets: make(map[int64]*bucket)},
		},
		maxSeries: maxSeries,
		ids:       make(map[callKey]uint32),
	}
}

// otherCallKey is the series that MaxSeries folds calls into.
var otherCallKey = callKey{app: otherLabel, version: otherLabel, platform: otherLabel,
	channel: otherLabel, route: otherLabel, method: otherLabel}

// intern returns k's id, giving it one if it has none.
func (a *aggregates) intern(k *callKey) uint32 {
	if id, ok := a.ids[*k]; ok {
		return id
	}
	var id uint32
	if n := len(a.free); n > 0 {
		id = a.free[n-1]
		a.free = a.free[:n-1]
		a.keys[id] = *k
	} else {
		id = uint32(len(a.keys))
		a.keys = append(a.keys, *k)
		a.refs = append(a.refs, 0)
	}
	a.ids[*k] = id
	return id
}

// unref drops one use of id, freeing it with its last.
func (a *aggregates) unref(id uint32) {
	if a.refs[id]--; a.refs[id] <= 0 {
		a.refs[id] = 0
		delete(a.ids, a.keys[id])
		a.keys[id] = callKey{}
		a.free = append(a.free, id)
	}
}

// cell returns the cell of series id in b, creating it (or folding it into
// the "(other)" series when b is full).
func (a *aggregates) cell(b *bucket, id uint32) *callCell {
	if i, ok := b.index[id]; ok {
		return &b.calls[i]
	}
	if len(b.calls) >= a.maxSeries {
		a.overflow++
		id = a.intern(&otherCallKey)
		if i, ok := b.index[id]; ok {
			return &b.calls[i]
		}
	}
	a.refs[id]++
	b.index[id] = int32(len(b.calls))
	b.calls = append(b.calls, callCell{id: id})
	return &b.calls[len(b.calls)-1]
}

func (a *aggregates) table(res Resolution) *table {
	if res == Minute {
		return &a.tables[0]
	}
	return &a.tables[1]
}

// oldest returns the start of the oldest bucket still kept at now.
func (t *table) oldest(now time.Time) int64 {
	return floorDiv(now.Add(-t.retention).Unix(), t.step) * t.step
}

// bucketAt returns the bucket for Unix time sec, creating it, or nil when
// sec is older than the retention.
func (t *table) bucketAt(sec int64, now time.Time) *bucket {
	start := floorDiv(sec, t.step) * t.step
	if start < t.oldest(now) {
		return nil
	}
	b := t.buckets[start]
	if b == nil {
		b = newBucket()
		t.buckets[start] = b
	}
	return b
}

func (a *aggregates) prune(now time.Time) {
	for i := range a.tables {
		t := &a.tables[i]
		oldest := t.oldest(now)
		for start, b := range t.buckets {
			if start < oldest {
				for j := range b.calls {
					a.unref(b.calls[j].id)
				}
				delete(t.buckets, start)
			}
		}
	}
}

func (a *aggregates) addBatch(b *Batch, now time.Time) {
	for i := range b.Calls {
		a.addCall(&b.Calls[i], now)
	}
	for i := range b.Security {
		a.addSecurity(&b.Security[i], now)
	}
}

func (a *aggregates) addCall(c *Call, now time.Time) {
	a.aggregated++
	k := callKey{
		app: orUnknown(c.AppID), version: orUnknown(c.AppVersion),
		platform: orUnknown(c.Platform), channel: orUnknown(c.Channel),
		route: orUnknown(c.Route), method: c.Method, class: statusClass(c.Status),
	}
	id := a.intern(&k)
	sec, stored := c.Time.Unix(), false
	for i := range a.tables {
		b := a.tables[i].bucketAt(sec, now)
		if b == nil {
			continue
		}
		stored = true
		cell := a.cell(b, id)
		cell.count++
		cell.durSum += int64(c.Duration)
		cell.bytesIn += c.BytesIn
		cell.bytesOut += c.BytesOut
		cell.hist.add(histIndex(c.Duration))
	}
	if a.refs[id] == 0 { // late, or folded into "(other)" everywhere
		a.refs[id] = 1
		a.unref(id)
	}
	if !stored {
		a.late++
	}
}

func (a *aggregates) addSecurity(s *Security, now time.Time) {
	a.aggregated++
	k := secKey{
		kind: s.Kind, name: orUnknown(s.Name), reason: orUnknown(s.Reason),
		app: orUnknown(s.AppID), version: orUnknown(s.AppVersion),
		platform: orUnknown(s.Platform), channel: orUnknown(s.Channel),
	}
	other := secKey{name: otherLabel, reason: otherLabel, app: otherLabel,
		version: otherLabel, platform: otherLabel, channel: otherLabel}
	sec, stored := s.Time.Unix(), false
	for i := range a.tables {
		b := a.tables[i].bucketAt(sec, now)
		if b == nil {
			continue
		}
		stored = true
		key := k
		if _, ok := b.security[key]; !ok && len(b.security) >= a.maxSeries {
			a.overflow++
			key = other
			key.kind = s.Kind
		}
		b.security[key]++
		if !s.Kind.Refusal() {
			continue
		}
		rk := refusalKey{secKey: k, device: orUnknown(s.Device)}
		if _, ok := b.refusals[rk]; !ok && len(b.refusals) >= a.maxSeries {
			a.overflow++
			rk = refusalKey{secKey: other, device: otherLabel}
			rk.kind = s.Kind
		}
		b.refusals[rk]++
	}
	if !stored {
		a.late++
	}
}

// statusClass returns status/100, or 0 for a status outside 100..599.
func statusClass(status int) uint8 {
	if status < 100 || status > 599 {
		return 0
	}
	return uint8(status / 100)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Latency histograms have two buckets per power of two from 2^14 ns
// (16 µs) to 2^37 ns (137 s): [2^l, 1.5·2^l) and [1.5·2^l, 2^(l+1)).
// Bucket 0 holds everything faster, the last bucket everything slower.
const (
	histBuckets  = 48
	histMinShift = 14
)

func histIndex(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	ns := uint64(d)
	l := bits.Len64(ns) - 1
	if l < histMinShift {
		return 0
	}
	half := int(ns>>(l-1)) & 1
	i := 2*(l-histMinShift) + half + 1
	return min(i, histBuckets-1)
}

// histBounds returns bucket i's lower and upper bounds in nanoseconds.
func histBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, float64(uint64(1) << histMinShift)
	}
	l := (i-1)/2 + histMinShift
	base := float64(uint64(1) << l)
	if (i-1)%2 == 0 {
		return base, 1.5 * base
	}
	return 1.5 * base, 2 * base
}

// histogram is a sparse latency histogram: most series see few distinct
// latencies per bucket, so two are kept inline before a full array, and
// the full array remembers the range of buckets in use.
type histogram struct {
	idx    [2]uint8
	lo, hi uint8 // with full: the buckets in use are full[lo:hi+1]
	n      [2]uint32
	full   *[histBuckets]uint64
}

func (h *histogram) add(i int) {
	if h.full != nil {
		h.full[i]++
		h.lo, h.hi = min(h.lo, uint8(i)), max(h.hi, uint8(i))
		return
	}
	for j := range h.n {
		if h.n[j] == 0 {
			h.idx[j] = uint8(i)
		}
		if int(h.idx[j]) == i && h.n[j] < ^uint32(0) {
			h.n[j]++
			return
		}
	}
	h.full = new([histBuckets]uint64)
	h.lo, h.hi = uint8(i), uint8(i)
	for j := range h.n {
		h.full[h.idx[j]] += uint64(h.n[j])
		h.lo, h.hi = min(h.lo, h.idx[j]), max(h.hi, h.idx[j])
	}
	h.full[i]++
}

// addTo adds h's counts to dense.
func (h *histogram) addTo(dense *[histBuckets]uint64) {
	if h.full != nil {
		for i := int(h.lo); i <= int(h.hi); i++ {
			dense[i] += h.full[i]
		}
		return
	}
	for j, n := range h.n {
		dense[h.idx[j]] += uint64(n)
	}
}

// quantile returns the q-quantile of a dense histogram in nanoseconds,
// interpolating within the bucket, or 0 for an empty histogram.
func quantile(dense *[histBuckets]uint64, total uint64, q float64) float64 {
	if total == 0 {
		return 0
	}
	target := q * float64(total)
	var cum float64
	for i, n := range dense {
		if n == 0 {
			continue
		}
		if cum+float64(n) >= target {
			lo, hi := histBounds(i)
			return lo + (hi-lo)*(target-cum)/float64(n)
		}
		cum += float64(n)
	}
	lo, _ := histBounds(histBuckets - 1)
	return lo
}

// dump writes the aggregates as JSON (see Recorder.DumpState).
func (a *aggregates) dump(w io.Writer) error {
	type callOut struct {
		App, Version, Platform, Channel, Route, Method string
		Class                                          uint8
		Count, DurationNS, BytesIn, BytesOut           int64
	}
	type secOut struct {
		Kind                                          Kind
		Name, Reason, App, Version, Platform, Channel string
		Device                                        string `json:",omitempty"`
		Count                                         int64
	}
	type bucketOut struct {
		Resolution string
		Start      time.Time
		Calls      []callOut
		Security   []secOut
		Refusals   []secOut
	}
	out := struct {
		Aggregated, Late, Overflow uint64
		Buckets                    []bucketOut
	}{Aggregated: a.aggregated, Late: a.late, Overflow: a.overflow}
	for i := range a.tables {
		t := &a.tables[i]
		starts := make([]int64, 0, len(t.buckets))
		for s := range t.buckets {
			starts = append(starts, s)
		}
		slices.Sort(starts)
		for _, s := range starts {
			b := t.buckets[s]
			bo := bucketOut{Resolution: Resolution(i + 1).String(), Start: time.Unix(s, 0).UTC()}
			for _, c := range b.calls {
				k := a.keys[c.id]
				bo.Calls = append(bo.Calls, callOut{k.app, k.version, k.platform, k.channel, k.route, k.method,
					k.class, c.count, c.durSum, c.bytesIn, c.bytesOut})
			}
			for k, n := range b.security {
				bo.Security = append(bo.Security, secOut{k.kind, k.name, k.reason, k.app, k.version, k.platform, k.channel, "", n})
			}
			for k, n := range b.refusals {
				bo.Refusals = append(bo.Refusals, secOut{k.kind, k.name, k.reason, k.app, k.version, k.platform, k.channel, k.device, n})
			}
			out.Buckets = append(out.Buckets, bo)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}
