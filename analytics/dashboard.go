package analytics

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

//go:embed dashboard.html
var dashboardHTML string

//go:embed dashboard.css
var dashboardCSS string

var (
	dashboardTmpl = template.Must(template.New("dashboard").Parse(dashboardHTML))
	// dashboardCSP allows nothing but the page's own style sheet (by hash)
	// and forms and links to itself: no script runs on the page at all.
	dashboardCSP = func() string {
		sum := sha256.Sum256([]byte(dashboardCSS))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	}()
)

// dashboardRanges are the ranges the page offers, in order.
var dashboardRanges = []struct {
	name string
	d    time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"48h", 48 * time.Hour}}

// palette colours the series of a chart; the last colour is for "other".
var palette = []string{"#2f6fdf", "#f08c00", "#2b9348", "#d64545", "#8e44ad", "#16a2b8", "#9aa5b1"}

// kindColors colour security outcomes: refusals red-ish, failures orange,
// successes green-ish, the rest blue-ish.
var kindColors = map[Kind]string{
	RegistrationAccepted: "#52b788", RegistrationRefused: "#9d0208",
	ChallengeIssued: "#4895ef", ChallengeAnswered: "#2b9348", ChallengeFailed: "#f08c00",
	CheckBlocked: "#d00000", StepUpDemanded: "#7209b7", StepUpCompleted: "#b5179e",
	DeviceRefused: "#e85d04", VersionRefused: "#dc2f02", AttestationPassed: "#74c69d",
	AttestationFailed: "#6a040f", PinViolation: "#ffb703", UpdateApplied: "#219ebc",
}

type dashView struct {
	CSS                             template.CSS
	Ranges                          []rangeLink
	From, To, Resolution, Generated string
	Tiles                           []tile
	Calls                           []chart
	Latency, Security               chart
	Devices, Versions               chart
	Footer                          string
}

type rangeLink struct {
	Label, Href string
	Current     bool
}

type tile struct {
	ID, Label, Value, Note string
	Alert                  bool
}

type chart struct {
	ID, Title  string
	W, H       int
	MidX, MidY int
	Total      int64
	Empty      bool
	Grid       []gridLine
	Marks      []mark
	Texts      []label
	Legend     []legendItem
}

type gridLine struct{ X1, Y1, X2, Y2 string }

type mark struct{ X, Y, W, H, Color, Title string }

type label struct{ X, Y, Anchor, Class, Text string }

type legendItem struct{ Color, Label, Value string }

func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	name := "24h"
	for k, vs := range r.URL.Query() {
		if k != "range" || len(vs) != 1 {
			http.Error(w, "unknown or repeated parameter; the dashboard takes only range=1h, 6h, 24h or 48h", http.StatusBadRequest)
			return
		}
		name = vs[0]
	}
	var d time.Duration
	var links []rangeLink
	for _, rg := range dashboardRanges {
		links = append(links, rangeLink{Label: rg.name, Href: "?range=" + rg.name, Current: rg.name == name})
		if rg.name == name {
			d = rg.d
		}
	}
	if d == 0 {
		http.Error(w, "range must be 1h, 6h, 24h or 48h", http.StatusBadRequest)
		return
	}
	view, err := h.rec.dashboardView(d)
	if err != nil {
		http.Error(w, "analytics are unavailable", http.StatusInternalServerError)
		return
	}
	view.Ranges = links
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, view); err != nil {
		http.Error(w, "analytics are unavailable", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", dashboardCSP)
	_, _ = w.Write(buf.Bytes())
}

// dashboardView queries the aggregates for the page.
func (r *Recorder) dashboardView(d time.Duration) (*dashView, error) {
	now := r.now()
	since := now.Add(-d)
	v := &dashView{CSS: template.CSS(dashboardCSS), Generated: now.UTC().Format("2006-01-02 15:04:05")}
	var first *Summary
	for _, dim := range []string{"app", "platform", "channel"} {
		s, err := r.Summary(Query{Since: since, Until: now, GroupBy: []string{dim}, Limit: len(palette) - 1})
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = s
		}
		v.Calls = append(v.Calls, callsChart(s, dim))
	}
	sec, err := r.SecurityReport(Query{Since: since, Until: now, Limit: len(kindNames)})
	if err != nil {
		return nil, err
	}
	v.From = first.Since.Format("2006-01-02 15:04")
	v.To = first.Until.Format("2006-01-02 15:04")
	v.Resolution = first.Resolution.String()
	v.Latency = latencyChart(first.Routes)
	v.Security = securityChart(sec)
	v.Devices = refusedDevicesChart(sec.RefusedDevices)
	v.Versions = refusedVersionsChart(sec.RefusedVersions)
	v.Tiles = tiles(first, sec)
	st := first.Recorder
	v.Footer = fmt.Sprintf("Recorder: %d events aggregated, %d dropped, %d late, %d folded into (other). Device ids are keyed pseudonyms.",
		st.Aggregated, st.Dropped, st.Late, st.Overflow)
	return v, nil
}

func tiles(s *Summary, sec *SecurityReport) []tile {
	t := s.Total
	errRate := "–"
	if t.Calls > 0 {
		errRate = strconv.FormatFloat(100*float64(t.Status["5xx"])/float64(t.Calls), 'f', 1, 64) + "%"
	}
	refusedCalls := t.Status["4xx"]
	return []tile{
		{ID: "calls", Label: "Calls", Value: strconv.FormatInt(t.Calls, 10), Note: fmt.Sprintf("%d client errors (4xx)", refusedCalls)},
		{ID: "errors", Label: "Server errors", Value: errRate, Note: fmt.Sprintf("%d calls answered 5xx", t.Status["5xx"]), Alert: t.Status["5xx"] > 0},
		{ID: "p95", Label: "Latency p95", Value: fmtMS(t.Latency.P95), Note: "p50 " + fmtMS(t.Latency.P50) + ", p99 " + fmtMS(t.Latency.P99)},
		{ID: "challenges", Label: "Challenges", Value: strconv.FormatInt(sec.Kinds[ChallengeIssued.String()], 10),
			Note: fmt.Sprintf("%d failed answers", sec.Kinds[ChallengeFailed.String()])},
		{ID: "refusals", Label: "Refusals", Value: strconv.FormatInt(sec.Refusals, 10), Note: "devices, versions, checks, attestations", Alert: sec.Refusals > 0},
		{ID: "dropped", Label: "Dropped events", Value: strconv.FormatUint(s.Recorder.Dropped, 10), Note: "queue full", Alert: s.Recorder.Dropped > 0},
	}
}

func fmtMS(ms float64) string {
	switch {
	case ms == 0:
		return "–"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
}

func px(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// series is one stacked series of a time chart.
type series struct {
	label, color string
	values       []int64
	total        int64
}

const (
	chartW = 600
	chartH = 200
	padL   = 44
	padR   = 8
	padT   = 10
	padB   = 22
)

func callsChart(s *Summary, dim string) chart {
	var ss []series
	for i, g := range s.Groups {
		ss = append(ss, series{label: g.Key[dim], color: palette[i%(len(palette)-1)], values: g.Series, total: g.Calls})
	}
	if s.OtherGroups > 0 {
		other := slices.Clone(s.Series)
		total := s.Total.Calls
		for _, g := range s.Groups {
			total -= g.Calls
			for i, n := range g.Series {
				other[i] -= n
			}
		}
		ss = append(ss, series{label: fmt.Sprintf("%d more", s.OtherGroups), color: palette[len(palette)-1], values: other, total: total})
	}
	return timeChart("calls-by-"+dim, "Calls over time by "+dim, "calls", 420, s.Times, s.Resolution, ss)
}

func securityChart(rep *SecurityReport) chart {
	var ss []series
	for _, g := range rep.Groups {
		k, _ := ParseKind(g.Key["kind"])
		c := kindColors[k]
		if c == "" {
			c = palette[len(palette)-1]
		}
		ss = append(ss, series{label: g.Key["kind"], color: c, values: g.Series, total: g.Count})
	}
	return timeChart("security-over-time", "Security outcomes over time", "events", chartW, rep.Times, rep.Resolution, ss)
}

// timeChart draws stacked bars, one bar per point.
func timeChart(id, title, unit string, width int, times []time.Time, res Resolution, ss []series) chart {
	c := chart{ID: id, Title: title, W: width, H: chartH, MidX: (width + padL) / 2, MidY: chartH / 2}
	n := len(times)
	sums := make([]int64, n)
	for _, s := range ss {
		c.Total += s.total
		for i, v := range s.values {
			sums[i] += v
		}
		c.Legend = append(c.Legend, legendItem{Color: s.color, Label: s.label, Value: strconv.FormatInt(s.total, 10)})
	}
	var top int64
	for _, v := range sums {
		top = max(top, v)
	}
	plotW, plotH := float64(width-padL-padR), float64(chartH-padT-padB)
	ymax := niceCeil(top)
	for _, f := range []float64{0, 0.5, 1} {
		y := padT + plotH*(1-f)
		c.Grid = append(c.Grid, gridLine{X1: px(padL), Y1: px(y), X2: px(float64(width - padR)), Y2: px(y)})
		c.Texts = append(c.Texts, label{X: px(padL - 4), Y: px(y + 3), Anchor: "end", Text: fmtCount(f * ymax)})
	}
	if n == 0 {
		c.Empty = true
		return c
	}
	slot := plotW / float64(n)
	barW := math.Max(slot*0.8, 1)
	tf := "15:04"
	if res == Hour && n > 24 {
		tf = "Jan 2 15:04"
	}
	labels := min(n, width/100)
	for j := range labels {
		i := j * (n - 1) / max(labels-1, 1)
		x, anchor := padL+slot*(float64(i)+0.5), "middle"
		switch {
		case labels == 1:
		case j == 0:
			x, anchor = padL, "start"
		case j == labels-1:
			x, anchor = float64(width-padR), "end"
		}
		c.Texts = append(c.Texts, label{X: px(x), Y: px(chartH - 6), Anchor: anchor, Text: times[i].UTC().Format(tf)})
	}
	if top == 0 {
		c.Empty = true
		return c
	}
	base := make([]float64, n)
	for _, s := range ss {
		for i, v := range s.values {
			if v == 0 {
				continue
			}
			h := plotH * float64(v) / ymax
			y := padT + plotH - base[i] - h
			base[i] += h
			c.Marks = append(c.Marks, mark{
				X: px(padL + slot*float64(i) + (slot-barW)/2), Y: px(y), W: px(barW), H: px(math.Max(h, 0.5)),
				Color: s.color, Title: fmt.Sprintf("%s, %s: %d %s", s.label, times[i].UTC().Format("Jan 2 15:04"), v, unit),
			})
		}
	}
	return c
}

// hbar is one row of a horizontal bar chart.
type hbar struct {
	label, note string
	// values are drawn from the first (widest, lightest) to the last.
	values []float64
	titles []string
}

var hbarColors = []string{"#bcd4f6", "#6d9eeb", "#2f6fdf"}

const (
	hbarLabelW = 190
	hbarNoteW  = 200
)

func hbarChart(id, title string, rows []hbar, legend []legendItem, total int64) chart {
	rowH := 22
	c := chart{ID: id, Title: title, W: chartW, H: padT + max(len(rows), 3)*rowH + 6, Legend: legend, Total: total}
	c.MidX, c.MidY = chartW/2, c.H/2
	if len(rows) == 0 {
		c.Empty = true
		return c
	}
	var top float64
	for _, r := range rows {
		for _, v := range r.values {
			top = max(top, v)
		}
	}
	plotW := float64(chartW - hbarLabelW - hbarNoteW)
	for i, r := range rows {
		y := float64(padT + i*rowH)
		c.Texts = append(c.Texts,
			label{X: px(hbarLabelW - 6), Y: px(y + 13), Anchor: "end", Class: "label", Text: shorten(r.label, 30)},
			label{X: px(chartW - 4), Y: px(y + 13), Anchor: "end", Class: "value", Text: r.note})
		for j, v := range r.values {
			if v <= 0 || top <= 0 {
				continue
			}
			w := math.Max(plotW*v/top, 1)
			inset := float64(j) * 3
			c.Marks = append(c.Marks, mark{
				X: px(hbarLabelW), Y: px(y + 2 + inset), W: px(w), H: px(16 - 2*inset),
				Color: hbarColors[(j+len(hbarColors)-len(r.values))%len(hbarColors)], Title: r.titles[j],
			})
		}
	}
	return c
}

func latencyChart(routes []RouteTotals) chart {
	rows := make([]hbar, 0, 10)
	var total int64
	for _, rt := range routes[:min(len(routes), 10)] {
		l := rt.Latency
		total += rt.Calls
		rows = append(rows, hbar{
			label:  rt.Route,
			note:   fmt.Sprintf("%s / %s / %s, %d calls", fmtMS(l.P50), fmtMS(l.P95), fmtMS(l.P99), rt.Calls),
			values: []float64{l.P99, l.P95, l.P50},
			titles: []string{
				rt.Route + ": p99 " + fmtMS(l.P99), rt.Route + ": p95 " + fmtMS(l.P95), rt.Route + ": p50 " + fmtMS(l.P50),
			},
		})
	}
	legend := []legendItem{{hbarColors[2], "p50", ""}, {hbarColors[1], "p95", ""}, {hbarColors[0], "p99", ""}}
	return hbarChart("latency-by-route", "Latency by route (p50 / p95 / p99)", rows, legend, total)
}

func refusedDevicesChart(ds []RefusedDevice) chart {
	rows := make([]refusalRow, len(ds))
	for i, d := range ds {
		rows[i] = refusalRow{d.Device, d.App + ", " + d.Platform + ": ", d.Count, d.Kinds}
	}
	return refusalsChart("refused-devices", "Top refused devices", rows)
}

func refusedVersionsChart(vs []RefusedVersion) chart {
	rows := make([]refusalRow, len(vs))
	for i, v := range vs {
		rows[i] = refusalRow{v.App + " " + v.Version + " (" + v.Platform + ")", "", v.Count, v.Kinds}
	}
	return refusalsChart("refused-versions", "Top refused app versions", rows)
}

// refusalRow is one bar of a refusals chart.
type refusalRow struct {
	label, notePrefix string
	count             int64
	kinds             map[string]int64
}

func refusalsChart(id, title string, rs []refusalRow) chart {
	rows := make([]hbar, 0, min(len(rs), 10))
	var total int64
	for _, r := range rs[:min(len(rs), 10)] {
		total += r.count
		rows = append(rows, hbar{
			label: r.label, note: r.notePrefix + plural(r.count, "refusal"),
			values: []float64{float64(r.count)}, titles: []string{r.label + ": " + fmtKinds(r.kinds)},
		})
	}
	return hbarChart(id, title, rows, nil, total)
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatInt(n, 10) + " " + what + "s"
}

func fmtKinds(m map[string]int64) string {
	var b bytes.Buffer
	for _, k := range Kinds() {
		if n := m[k.String()]; n > 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, n)
		}
	}
	return b.String()
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v int64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(float64(v))))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= float64(v) {
			return m * p
		}
	}
	return 10 * p
}

func fmtCount(f float64) string {
	switch {
	case f >= 1e6:
		return strconv.FormatFloat(f/1e6, 'g', 3, 64) + "M"
	case f >= 1e4:
		return strconv.FormatFloat(f/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}
