package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/analytics/analyticstest"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/examples/travel/internal/story"
	"github.com/moatsec/moat/stepup"
)

// services returns the addresses of the Redis and PostgreSQL servers the
// tests use, or skips the test when they are not configured.
func services(t *testing.T) (redisAddr, pgURL string) {
	t.Helper()
	redisAddr, pgURL = os.Getenv("MOAT_TEST_REDIS_ADDR"), os.Getenv("MOAT_TEST_POSTGRES_URL")
	if redisAddr == "" || pgURL == "" {
		t.Skip("the multi-instance tests need Redis and PostgreSQL: " +
			"MOAT_TEST_REDIS_ADDR=127.0.0.1:6379 MOAT_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...")
	}
	return redisAddr, pgURL
}

// deploy starts n instances over fresh backends at redisAddr and pgURL,
// stopped when the test ends.
func deploy(t *testing.T, n int, opts ...func(*story.Options)) *story.Deployment {
	t.Helper()
	redisAddr, pgURL := services(t)
	return deployAt(t, n, redisAddr, pgURL, opts...)
}

// deployAt is deploy with the servers' addresses given.
func deployAt(t *testing.T, n int, redisAddr, pgURL string, opts ...func(*story.Options)) *story.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := openBackends(ctx, redisAddr, pgURL, logger)
	require.NoError(t, err, "Redis at %s and PostgreSQL at %s must answer (MOAT_TEST_REDIS_ADDR, MOAT_TEST_POSTGRES_URL)", redisAddr, pgURL)
	t.Cleanup(b.close)
	o := story.Options{Instances: n, Backends: b.Backends, Logger: logger}
	for _, f := range opts {
		f(&o)
	}
	d, err := story.Start(o)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	return d
}

// TestStoryOnThreeInstances plays the whole travel story on three
// instances sharing Redis and PostgreSQL; every call goes to the next
// instance.
func TestStoryOnThreeInstances(t *testing.T) {
	d := deploy(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, story.Play(ctx, d, &out, story.PlayOptions{}), out.String())
	tr := out.String()
	require.Contains(t, tr, "the story went as expected")
	for _, want := range []string{"401 insufficient_user_authentication", "403 check_blocked", "403 device_blocked", "403 app_version_blocked", "403 update_required"} {
		require.Contains(t, tr, want)
	}
	for _, name := range []string{"a", "b", "c"} {
		require.Contains(t, tr, "\n  "+name+" POST   /oauth/authorize-challenge", "instance %s served calls", name)
	}
}

var errStop = errors.New("the test stops answering here")

// TestOTPOnceAcrossInstances submits one SMS code 100 times at once,
// spread over three instances: the code check accepts it exactly once.
// (The other submissions carry the same auth session of the same client:
// once the SMS check has succeeded, its success holds for that client, so
// some of them are granted on that success without the code being checked
// again; the servers' analytics tell the two apart.)
func TestOTPOnceAcrossInstances(t *testing.T) {
	capture := new(analyticstest.Capture)
	d := deploy(t, 3, func(o *story.Options) { o.Sink = capture })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	dr, err := story.NewDriver(d, &out)
	require.NoError(t, err)
	defer dr.Close()
	app, err := dr.NewApp(ctx, "alice", "phone-otp", func(context.Context) (string, error) { return "", errStop })
	require.NoError(t, err)
	require.NoError(t, app.Authorize(ctx, story.ScopeRead, story.ScopePay))
	// The step-up sends an SMS; the app stops before answering.
	require.ErrorIs(t, app.StepUp(ctx, []string{stepup.ACRMultiFactor}, -1), errStop)
	code := d.Outbox.LastCode(story.Phone("alice"))
	require.NotEmpty(t, code)

	mark := out.Len()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { _ = app.Answer(ctx, map[string]any{story.CheckSMS: stepup.CodeAnswer{Code: code}}) })
	}
	wg.Wait()
	served, answers := map[string]int{}, map[string]int{}
	for _, line := range strings.Split(out.String()[mark:], "\n") {
		if strings.Contains(line, "refused:") {
			answers[line[strings.Index(line, "refused:"):]]++
		}
		if f := strings.Fields(line); len(f) > 3 && f[2] == "/oauth/authorize-challenge" {
			served[f[0]]++
			answers[strings.Join(f[3:], " ")]++
		}
	}
	t.Logf("submissions served by instance: %v; answers: %v", served, answers)
	require.Len(t, served, 3, "the submissions went to all three instances")

	var dropped uint64
	for _, in := range d.Instances {
		rec := in.Stack.Analytics()
		require.NoError(t, rec.Close(ctx))
		dropped += rec.Stats().Dropped
	}
	require.Zero(t, dropped, "every security outcome was recorded")
	outcomes := map[string]int{}
	for _, e := range capture.Security() {
		if e.Name == story.CheckSMS {
			outcomes[e.Kind.String()+" "+e.Reason]++
		}
	}
	t.Logf("SMS check outcomes: %v", outcomes)
	require.Equal(t, 1, outcomes[analytics.ChallengeAnswered.String()+" "], "the code check accepted the code exactly once")
}

// TestStolenOnEveryInstance marks a device stolen through instance a, 100
// times, and measures how long until b and c refuse it; then restores it
// and waits until both let it in again. It logs the propagation times
// (run with -v to see them).
func TestStolenOnEveryInstance(t *testing.T) {
	d := deploy(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dr, err := story.NewDriver(d, io.Discard)
	require.NoError(t, err)
	defer dr.Close()
	app, err := dr.NewApp(ctx, "alice", "phone-stolen", nil)
	require.NoError(t, err)
	require.NoError(t, app.Authorize(ctx, story.ScopeRead))
	a, others := d.Instances[0], d.Instances[1:]
	for _, in := range d.Instances {
		requireStatus(ctx, t, dr, app, in, http.StatusOK)
	}

	const trials = 100
	var delays []time.Duration
	nextRefused := 0
	for trial := range trials {
		setStatus(ctx, t, dr, a, "phone-stolen", "stolen")
		changed := time.Now()
		for _, in := range others {
			polls, at := waitFor(ctx, t, dr, app, in, http.StatusForbidden)
			delays = append(delays, at.Sub(changed))
			if polls == 1 {
				nextRefused++
			}
		}
		setStatus(ctx, t, dr, a, "phone-stolen", "active")
		for _, in := range others {
			waitFor(ctx, t, dr, app, in, http.StatusOK)
		}
		_ = trial
	}
	slices.Sort(delays)
	p50, p99 := delays[len(delays)/2], delays[len(delays)*99/100]
	t.Logf("stolen through instance a, refused by b and c: %d trials, p50 %v, p99 %v, max %v; the very next request was refused in %d of %d",
		trials, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), delays[len(delays)-1].Round(10*time.Microsecond), nextRefused, len(delays))
}

// TestFailClosedWhenServicesStop cuts Redis, then PostgreSQL, off in the
// middle of a session: requests that need them get 503 and change
// nothing, and the story resumes once they are back.
func TestFailClosedWhenServicesStop(t *testing.T) {
	redisAddr, pgURL := services(t)
	redisProxy := newFaultProxy(t, redisAddr)
	proxiedURL, pgProxy := throughProxy(t, pgURL)
	d := deployAt(t, 3, redisProxy.addr(), proxiedURL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dr, err := story.NewDriver(d, io.Discard)
	require.NoError(t, err)
	defer dr.Close()
	app, err := dr.NewApp(ctx, "alice", "phone-faults", nil)
	require.NoError(t, err)
	require.NoError(t, app.Authorize(ctx, story.ScopeRead))
	for _, in := range d.Instances {
		requireStatus(ctx, t, dr, app, in, http.StatusOK)
	}

	// Redis down: every protected call needs its replay cache.
	redisProxy.setDown(true)
	for _, in := range d.Instances {
		requireStatus(ctx, t, dr, app, in, http.StatusServiceUnavailable)
	}
	_, err = dr.NewApp(ctx, "bob", "phone-bob-faults", nil)
	requireUnavailable(t, err)
	redisProxy.setDown(false)
	for _, in := range d.Instances {
		waitFor(ctx, t, dr, app, in, http.StatusOK)
	}

	// PostgreSQL down: registration and operator changes need it.
	pgProxy.setDown(true)
	_, err = dr.NewApp(ctx, "bob", "phone-bob-faults", nil)
	requireUnavailable(t, err)
	err = dr.Operator(ctx, "PUT", "/devices/phone-faults/status", map[string]string{"status": "stolen", "reason": "test"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "503")
	pgProxy.setDown(false)

	// Back: the refused change did not happen, and registration works.
	var bob *client.Client
	require.Eventually(t, func() bool {
		bob, err = dr.NewApp(ctx, "bob", "phone-bob-faults", nil)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "registration after PostgreSQL is back: %v", err)
	require.NoError(t, bob.Authorize(ctx, story.ScopeRead))
	for _, in := range d.Instances {
		requireStatus(ctx, t, dr, app, in, http.StatusOK)
		requireStatus(ctx, t, dr, bob, in, http.StatusOK)
	}
}

func requireUnavailable(t *testing.T, err error) {
	t.Helper()
	var oe *client.OAuthError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, http.StatusServiceUnavailable, oe.Status, "%v", err)
}

func call(ctx context.Context, dr *story.Driver, app *client.Client, in *story.Instance) (int, error) {
	resp, err := dr.Call(story.At(ctx, in), app, "GET", "/reservations/42")
	var oe *client.OAuthError
	switch {
	case errors.As(err, &oe):
		return oe.Status, nil
	case err != nil:
		return 0, err
	}
	return resp.StatusCode, nil
}

func requireStatus(ctx context.Context, t *testing.T, dr *story.Driver, app *client.Client, in *story.Instance, want int) {
	t.Helper()
	got, err := call(ctx, dr, app, in)
	require.NoError(t, err)
	require.Equal(t, want, got, "instance %s", in.Name)
}

// waitFor calls instance in until it answers want, and returns how many
// calls that took and when the answer came.
func waitFor(ctx context.Context, t *testing.T, dr *story.Driver, app *client.Client, in *story.Instance, want int) (int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for polls := 1; ; polls++ {
		got, err := call(ctx, dr, app, in)
		require.NoError(t, err)
		if got == want {
			return polls, time.Now()
		}
		require.True(t, time.Now().Before(deadline), "instance %s still answers %d, want %d", in.Name, got, want)
	}
}

func setStatus(ctx context.Context, t *testing.T, dr *story.Driver, in *story.Instance, deviceID, status string) {
	t.Helper()
	require.NoError(t, dr.Operator(story.At(ctx, in), "PUT", "/devices/"+deviceID+"/status", map[string]string{"status": status, "reason": "propagation test"}))
}

// throughProxy returns pgURL with its host:port replaced by the address
// of a fault proxy in front of it, and the proxy.
func throughProxy(t *testing.T, pgURL string) (string, *faultProxy) {
	t.Helper()
	u, err := url.Parse(pgURL)
	require.NoError(t, err)
	require.NotEmpty(t, u.Host, "a host:port in MOAT_TEST_POSTGRES_URL")
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := newFaultProxy(t, host)
	u.Host = p.addr()
	return u.String(), p
}

// faultProxy forwards TCP connections to a server until it is set down:
// then it cuts every open connection and refuses new ones, as a stopped
// server would.
type faultProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
	})
	go p.serve()
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *faultProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}
