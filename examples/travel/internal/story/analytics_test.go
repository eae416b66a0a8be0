package story

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/analytics/analyticstest"
)

// TestNoSecretsInAnalytics runs the whole story and searches everything
// analytics recorded (raw events, aggregates, API answers, dashboard pages)
// for every secret the story used: passwords, the PIN, SMS codes, access
// and refresh tokens, DPoP proofs, auth sessions, codes, nonces and the
// operator token.
func TestNoSecretsInAnalytics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	capture := new(analyticstest.Capture)
	var mu sync.Mutex
	secrets := map[string]bool{}
	collect := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		secrets[s] = true
	}
	d, out := playStory(ctx, t, Options{Sink: capture}, PlayOptions{Secret: collect})

	for _, u := range users {
		collect(u.password)
	}
	// The 4-digit PIN is too short to search for without false alarms
	// (it would match any number); every longer secret is searched.
	collect(d.OperatorToken)
	for _, m := range d.Outbox.Messages() {
		collect(m.Code)
	}
	rec := d.Instances[0].Stack.Analytics()
	require.NoError(t, rec.Close(ctx))
	all, err := analyticstest.Everything(ctx, rec, capture)
	require.NoError(t, err)
	require.NotEmpty(t, capture.Calls(), "the sink saw the story's calls")
	require.NotEmpty(t, capture.Security(), "the sink saw the story's security outcomes")
	list := make([]string, 0, len(secrets))
	for s := range secrets {
		if len(s) >= 6 {
			list = append(list, s)
		}
	}
	require.Greater(t, len(list), 50, "the story used many secrets; the collector must have seen them")
	analyticstest.RequireNoSecrets(t, all, list...)
	for _, s := range list {
		require.NotContains(t, out, s, "nor does the transcript show a secret")
	}
}

// TestBrowserDashboard loads the travel server's dashboard, after the
// story, in headless Chromium and checks that every chart rendered with the
// story's data. .ci/run installs Debian's chromium and sets
// MOAT_BROWSER_TEST=1; without chromium the test skips.
func TestBrowserDashboard(t *testing.T) {
	chromium := analyticstest.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, _ := playStory(ctx, t, Options{}, PlayOptions{})
	require.NoError(t, d.Flush(ctx))

	// The browser gets the dashboard over plain HTTP on loopback (it does
	// not trust the example's throwaway CA), with the operator's Basic
	// credentials.
	mux := http.NewServeMux()
	d.Instances[0].Stack.Mount(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := "http://operator:" + d.OperatorToken + "@" + strings.TrimPrefix(ts.URL, "http://") + "/moat/analytics/?range=1h"
	dir := t.TempDir()
	if keep := os.Getenv("MOAT_BROWSER_SHOTS"); keep != "" {
		dir = keep // keep the screenshot
	}
	page := analyticstest.Browse(t, chromium, url, dir)
	charts := analyticstest.RequireDashboard(t, page.DOM)
	require.NotEmpty(t, charts)
	t.Logf("dashboard rendered %d charts; screenshot in %s", len(charts), page.Screenshot)
}
