package analyticstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// BrowserEnv names the environment variable that demands the browser test:
// when it is "1", a missing Chromium fails the test instead of skipping it.
const BrowserEnv = "MOAT_BROWSER_TEST"

// Chromium returns the path of Debian's chromium (or of $MOAT_CHROMIUM).
// Without one it skips t, or fails it when $MOAT_BROWSER_TEST is "1".
func Chromium(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("MOAT_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "analyticstest: no chromium found (apt-get install chromium, or set MOAT_CHROMIUM)"
	if os.Getenv(BrowserEnv) == "1" {
		t.Fatalf("%s, and %s=1 demands the browser test", msg, BrowserEnv)
	}
	t.Skip(msg + "; set " + BrowserEnv + "=1 to make this a failure")
	return ""
}

// Page is what a headless browser made of a page.
type Page struct {
	// DOM is the document as the browser serialised it after loading.
	DOM string
	// Screenshot is the path of a PNG of the page at 1280x900.
	Screenshot string
}

// Browse loads url in headless Chromium twice, once to dump the DOM and
// once to save a screenshot in dir, and fails t if either run fails. No
// chromedriver is needed: it drives the browser with command-line flags.
func Browse(t testing.TB, chromium, url, dir string) Page {
	t.Helper()
	profile := t.TempDir()
	run := func(extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args := append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile,
		}, extra...)
		args = append(args, url)
		cmd := exec.CommandContext(ctx, chromium, args...)
		var stderr limitedBuffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("analyticstest: chromium %v: %v\n%s", extra, err, stderr.b)
		}
		return out
	}
	dom := run("--dump-dom")
	shot := filepath.Join(dir, "dashboard.png")
	run("--screenshot="+shot, "--window-size=1280,900")
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("analyticstest: chromium wrote no screenshot at %s: %v", shot, err)
	}
	return Page{DOM: string(dom), Screenshot: shot}
}

type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 8192 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

var chartRE = regexp.MustCompile(`<svg class="chart" data-chart="([a-z-]+)" data-total="(\d+)" data-marks="(\d+)"`)

// Chart is one chart as found in a dashboard's DOM.
type Chart struct {
	// Total is the sum the chart shows; Marks counts its bars.
	Total, Marks int
}

// Charts returns the dashboard's charts by id ("calls-by-app",
// "calls-by-platform", "calls-by-channel", "latency-by-route",
// "security-over-time", "refused-devices", "refused-versions").
func Charts(dom string) map[string]Chart {
	out := map[string]Chart{}
	for _, m := range chartRE.FindAllStringSubmatch(dom, -1) {
		total, _ := strconv.Atoi(m[2])
		marks, _ := strconv.Atoi(m[3])
		out[m[1]] = Chart{Total: total, Marks: marks}
	}
	return out
}

// DashboardCharts lists the ids of the charts the dashboard draws.
var DashboardCharts = []string{
	"calls-by-app", "calls-by-platform", "calls-by-channel", "latency-by-route",
	"security-over-time", "refused-devices", "refused-versions",
}

// RequireDashboard fails t unless dom holds every dashboard chart, each
// drawn with data (at least one bar and a non-zero total).
func RequireDashboard(t testing.TB, dom string) map[string]Chart {
	t.Helper()
	charts := Charts(dom)
	for _, id := range DashboardCharts {
		c, ok := charts[id]
		switch {
		case !ok:
			t.Errorf("analyticstest: the dashboard has no chart %q", id)
		case c.Marks == 0 || c.Total == 0:
			t.Errorf("analyticstest: chart %q rendered without data (total %d, %d bars)", id, c.Total, c.Marks)
		}
	}
	return charts
}
