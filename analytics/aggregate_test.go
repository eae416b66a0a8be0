package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testRecorder returns a recorder whose clock the test sets.
func testRecorder(t *testing.T, cfg Config) (*Recorder, *time.Time) {
	t.Helper()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg.DeviceKey = benchKey
	cfg.Clock = func() time.Time { return now }
	cfg.DrainInterval = time.Hour
	rec, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	return rec, &now
}

// ingest aggregates events as the drain would, at the recorder's now.
func ingest(rec *Recorder, b *Batch) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	now := rec.now()
	rec.agg.prune(now)
	rec.agg.addBatch(b, now)
}

// genCalls generates n calls over the span before now.
func genCalls(seed uint64, n int, now time.Time, span time.Duration) []Call {
	rng := rand.New(rand.NewPCG(seed, 99))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	calls := make([]Call, n)
	for i := range calls {
		calls[i] = Call{
			Time: now.Add(-time.Duration(rng.Int64N(int64(span)))),
			Source: Source{AppID: pick("travel", "travel-watch", ""), AppVersion: pick("2.4.1", "2.4.0"),
				Platform: pick("ios", "android"), Channel: pick("phone", "watch", "tablet")},
			Route: pick("GET /trips", "GET /trips/{id}", "POST /pay"), Method: pick("GET", "POST"),
			Status:   []int{200, 201, 401, 403, 500, 0}[rng.IntN(6)],
			Duration: time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond)),
			BytesIn:  rng.Int64N(100), BytesOut: rng.Int64N(1000),
		}
	}
	return calls
}

func callDims(c *Call) [7]string {
	k := callKey{app: orUnknown(c.AppID), version: orUnknown(c.AppVersion), platform: orUnknown(c.Platform),
		channel: orUnknown(c.Channel), route: orUnknown(c.Route), method: c.Method, class: statusClass(c.Status)}
	return k.dims()
}

// TestSummaryMatchesBruteForce compares the aggregates' answers with
// counts computed from the raw generated events.
func TestSummaryMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{MinuteRetention: 6 * time.Hour})
	calls := genCalls(1, 20000, *now, 5*time.Hour)
	ingest(rec, &Batch{Calls: calls})

	for _, tc := range []struct {
		q Query
	}{
		{Query{}},
		{Query{GroupBy: []string{"app"}}},
		{Query{GroupBy: []string{"app", "platform", "channel"}}},
		{Query{GroupBy: []string{"route", "status"}, Filter: map[string]string{"app": "travel"}}},
		{Query{GroupBy: CallDims, Since: now.Add(-5 * time.Hour), Resolution: Minute, Limit: 1000}},
		{Query{GroupBy: []string{"version"}, Since: now.Add(-2 * time.Hour), Resolution: Minute}},
		{Query{Filter: map[string]string{"status": "5xx", "platform": "ios"}, Resolution: Hour}},
		{Query{Filter: map[string]string{"app": "unknown"}}},
	} {
		t.Run(fmt.Sprint(tc.q.GroupBy, tc.q.Filter, tc.q.Resolution), func(t *testing.T) {
			s, err := rec.Summary(tc.q)
			require.NoError(t, err)
			group, _ := dimIndexes("", tc.q.GroupBy, CallDims)
			filter, _ := filterOf(tc.q.Filter, CallDims)
			want := map[string]int64{}
			wantSeries := map[string][]int64{}
			var total int64
			for i := range calls {
				c := &calls[i]
				if c.Time.Before(s.Since) || !c.Time.Before(s.Until) {
					continue
				}
				d := callDims(c)
				if !matches(&d, filter) {
					continue
				}
				total++
				k := fmt.Sprint(keyMap(ptr(groupKey(&d, group)), group, CallDims))
				want[k]++
				if wantSeries[k] == nil {
					wantSeries[k] = make([]int64, len(s.Times))
				}
				wantSeries[k][int(c.Time.Sub(s.Since)/s.Resolution.step())]++
			}
			require.Equal(t, total, s.Total.Calls)
			limit, _ := limitOf(tc.q.Limit)
			require.Equal(t, min(len(want), limit), len(s.Groups))
			require.Equal(t, len(want)-len(s.Groups), s.OtherGroups)
			for _, g := range s.Groups {
				k := fmt.Sprint(g.Key)
				require.Equal(t, want[k], g.Calls, k)
				require.Equal(t, wantSeries[k], g.Series, k)
				var st int64
				for _, n := range g.Status {
					st += n
				}
				require.Equal(t, g.Calls, st)
			}
			require.True(t, slices.IsSortedFunc(s.Groups, func(a, b CallGroup) int { return int(b.Calls - a.Calls) }))
			var sum int64
			for _, n := range s.Series {
				sum += n
			}
			require.Equal(t, total, sum)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestLatencyPercentiles(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{})
	var calls []Call
	var durs []float64
	for i := range 10000 {
		d := time.Duration(i+1) * 37 * time.Microsecond // 37 µs .. 370 ms, uniform
		calls = append(calls, Call{Time: now.Add(-time.Minute), Route: "GET /x", Method: "GET", Status: 200, Duration: d})
		durs = append(durs, float64(d)/1e6)
	}
	ingest(rec, &Batch{Calls: calls})
	s, err := rec.Summary(Query{Resolution: Minute, Since: now.Add(-time.Hour)})
	require.NoError(t, err)
	exact := func(q float64) float64 { return durs[int(q*float64(len(durs)))-1] }
	l := s.Total.Latency
	for _, c := range []struct{ got, want float64 }{{l.P50, exact(.5)}, {l.P95, exact(.95)}, {l.P99, exact(.99)}} {
		require.InEpsilon(t, c.want, c.got, 0.25, "within a bucket's width")
	}
	require.InDelta(t, 185.0, l.Mean, 0.1)
	require.Len(t, s.Routes, 1)
	require.Equal(t, l, s.Routes[0].Latency)
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, d := range []time.Duration{0, 1, time.Microsecond, 16383, 16384, 24575, 24576, 32768,
		time.Millisecond, time.Second, 100 * time.Second, 137 * time.Second, time.Hour, math.MaxInt64} {
		i := histIndex(d)
		require.GreaterOrEqual(t, i, prev, "monotonic at %v", d)
		require.Less(t, i, histBuckets)
		lo, hi := histBounds(i)
		if i > 0 && i < histBuckets-1 {
			require.True(t, float64(d) >= lo && float64(d) < hi, "%v in bucket %d [%v, %v)", d, i, lo, hi)
		}
		prev = i
	}
	var h histogram
	for i := range 10 {
		h.add(i % 3)
	}
	var dense [histBuckets]uint64
	h.addTo(&dense)
	require.EqualValues(t, []uint64{4, 3, 3}, dense[:3])
	var small histogram
	small.add(5)
	small.add(5)
	small.add(7)
	require.Nil(t, small.full, "two distinct buckets stay inline")
	require.Zero(t, quantile(new([histBuckets]uint64), 0, .5))
}

func TestRetentionAndLateEvents(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{MinuteRetention: time.Hour, HourRetention: 3 * time.Hour})
	start := *now
	ingest(rec, &Batch{Calls: []Call{{Time: start, Route: "a", Status: 200}}})
	*now = start.Add(90 * time.Minute)
	ingest(rec, &Batch{Calls: []Call{
		{Time: start.Add(89 * time.Minute), Route: "b", Status: 200},
		{Time: start.Add(-time.Hour), Route: "c", Status: 200},        // within the hours only
		{Time: start.Add(-4 * time.Hour), Route: "late", Status: 200}, // beyond both
	}})
	require.EqualValues(t, 1, rec.Stats().Late)
	s, err := rec.Summary(Query{Since: start.Add(-5 * time.Hour), Until: *now, Resolution: Hour, GroupBy: []string{"route"}})
	require.NoError(t, err)
	require.EqualValues(t, 3, s.Total.Calls)
	m, err := rec.Summary(Query{Since: now.Add(-time.Hour), Resolution: Minute, GroupBy: []string{"route"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, m.Total.Calls, "the minute of 'a' was pruned")
	require.Equal(t, "b", m.Groups[0].Key["route"])

	*now = start.Add(5 * time.Hour)
	ingest(rec, &Batch{})
	rec.mu.RLock()
	require.Len(t, rec.agg.tables[1].buckets, 0, "every hour pruned")
	require.Empty(t, rec.agg.ids, "every series id freed")
	require.Len(t, rec.agg.free, len(rec.agg.keys))
	rec.mu.RUnlock()
}

func TestMaxSeriesFoldsIntoOther(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{MaxSeries: 10})
	var calls []Call
	var sec []Security
	for i := range 50 {
		v := "9." + strconv.Itoa(i)
		calls = append(calls, Call{Time: *now, Source: Source{AppID: "travel", AppVersion: v}, Route: "r", Status: 200})
		sec = append(sec, Security{Time: *now, Source: Source{AppID: "travel", AppVersion: v, Device: "d_" + v}, Kind: DeviceRefused})
	}
	ingest(rec, &Batch{Calls: calls, Security: sec})
	s, err := rec.Summary(Query{GroupBy: []string{"version"}, Limit: 100})
	require.NoError(t, err)
	require.EqualValues(t, 50, s.Total.Calls, "nothing lost")
	require.Len(t, s.Groups, 11)
	require.Equal(t, otherLabel, s.Groups[0].Key["version"])
	require.EqualValues(t, 40, s.Groups[0].Calls)
	rep, err := rec.SecurityReport(Query{GroupBy: []string{"version"}, Limit: 100})
	require.NoError(t, err)
	require.EqualValues(t, 50, rep.Total)
	require.EqualValues(t, 50, rep.Refusals)
	require.Len(t, rep.RefusedDevices, 11)
	require.Positive(t, rec.Stats().Overflow)
}

func TestSecurityReport(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{})
	src := func(dev, ver string) Source {
		return Source{AppID: "travel", AppVersion: ver, Platform: "android", Channel: "phone", Device: dev}
	}
	at := now.Add(-30 * time.Minute)
	var sec []Security
	add := func(n int, s Security) {
		for range n {
			sec = append(sec, s)
		}
	}
	add(5, Security{Time: at, Source: src("d_a", "2.4.1"), Kind: ChallengeIssued, Name: "password"})
	add(2, Security{Time: at, Source: src("d_a", "2.4.1"), Kind: ChallengeFailed, Name: "password", Reason: "wrong_password"})
	add(3, Security{Time: at, Source: src("d_stolen", "2.4.1"), Kind: DeviceRefused, Name: "device-status", Reason: "stolen"})
	add(4, Security{Time: at, Source: src("d_old", "1.9.0"), Kind: VersionRefused, Name: "version-policy", Reason: "below_minimum"})
	add(1, Security{Time: at, Source: src("d_old", "1.9.0"), Kind: AttestationFailed, Name: "play-integrity"})
	add(1, Security{Time: at, Kind: 0}) // an invalid kind from a buggy hook
	ingest(rec, &Batch{Security: sec})

	rep, err := rec.SecurityReport(Query{Since: now.Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, []string{"kind"}, rep.GroupBy)
	require.EqualValues(t, 16, rep.Total)
	require.EqualValues(t, 8, rep.Refusals)
	require.EqualValues(t, 5, rep.Kinds["challenge_issued"])
	require.EqualValues(t, 0, rep.Kinds["pin_violation"], "every kind present")
	require.Contains(t, rep.Kinds, "pin_violation")
	require.EqualValues(t, 1, rep.Kinds["unknown"])
	require.Equal(t, map[string]string{"kind": "challenge_issued"}, rep.Groups[0].Key)
	require.Equal(t, []RefusedDevice{
		{Device: "d_old", App: "travel", Platform: "android", Count: 5, Kinds: map[string]int64{"version_refused": 4, "attestation_failed": 1}},
		{Device: "d_stolen", App: "travel", Platform: "android", Count: 3, Kinds: map[string]int64{"device_refused": 3}},
	}, rep.RefusedDevices)
	require.Len(t, rep.RefusedVersions, 1, "only the version policy's refusals")
	require.Equal(t, "1.9.0", rep.RefusedVersions[0].Version)
	require.EqualValues(t, 4, rep.RefusedVersions[0].Count)

	f, err := rec.SecurityReport(Query{Filter: map[string]string{"kind": "device_refused"}, GroupBy: []string{"reason", "name"}})
	require.NoError(t, err)
	require.EqualValues(t, 3, f.Total)
	require.Equal(t, map[string]string{"reason": "stolen", "name": "device-status"}, f.Groups[0].Key)
	require.Len(t, f.RefusedDevices, 1)
}

func TestQueryValidation(t *testing.T) {
	t.Parallel()
	rec, now := testRecorder(t, Config{})
	for _, q := range []Query{
		{GroupBy: []string{"planet"}},
		{GroupBy: []string{"app", "app"}},
		{Filter: map[string]string{"planet": "mars"}},
		{Limit: -1},
		{Limit: 1001},
		{Since: *now, Until: now.Add(-time.Hour)},
		{Since: *now, Until: *now},
		{Since: now.Add(-48 * time.Hour), Resolution: Minute},
		{Resolution: Resolution(9)},
	} {
		_, err := rec.Summary(q)
		require.ErrorIs(t, err, ErrInvalidQuery, "%+v", q)
	}
	_, err := rec.SecurityReport(Query{GroupBy: []string{"route"}})
	require.ErrorIs(t, err, ErrInvalidQuery)
}
