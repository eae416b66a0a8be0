package pinning

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv/kvtest"
)

// collector is a Reporter that keeps what it gets.
type collector struct {
	mu      sync.Mutex
	reports []Report
}

func (c *collector) Report(r Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, r)
}

func (c *collector) all() []Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Report(nil), c.reports...)
}

// pki is the world the verification tests run in: two trusted CAs, a
// genuine server under CA A's intermediate, and an impostor under CA B.
type pki struct {
	rootA, rootB, interA *testCA
	genuine, impostor    tls.Certificate
	roots                *x509.CertPool
}

func newPKI(t testing.TB, host string) *pki {
	t.Helper()
	p := &pki{rootA: newRoot(t, "Root A"), rootB: newRoot(t, "Root B")}
	p.interA = p.rootA.intermediate(t, "Intermediate A")
	p.genuine = p.interA.leaf(t, []string{host}, p.interA.cert)
	// The attack: a leaf from another trusted CA, with the genuine pinned
	// intermediate appended to the chain it serves.
	p.impostor = p.rootB.leaf(t, []string{host}, p.interA.cert)
	p.roots = pool(p.rootA, p.rootB)
	return p
}

func mustVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	require.NoError(t, err)
	return v
}

func tlsConfig(t testing.TB, v *Verifier, base *tls.Config) *tls.Config {
	t.Helper()
	cfg, err := v.TLSConfig(base)
	require.NoError(t, err)
	return cfg
}

func TestAppendedPinnedIntermediateIsRefused(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	set := setFor(t, host, PinOf(p.interA.cert), randomPin(t))
	reports := &collector{}
	v := mustVerifier(t, Config{Pins: set, Reporter: reports})

	// What the impostor's connection looks like: the pinned intermediate
	// is among the certificates sent, but on no verified chain.
	var seen tls.ConnectionState
	spy := &tls.Config{RootCAs: p.roots, ServerName: host, VerifyConnection: func(cs tls.ConnectionState) error {
		seen = cs
		return nil
	}}
	require.NoError(t, handshake(t, p.impostor, spy))
	require.Contains(t, chainPins([][]*x509.Certificate{seen.PeerCertificates}), PinOf(p.interA.cert), "a check of the sent chain would pass")
	require.NotContains(t, chainPins(seen.VerifiedChains), PinOf(p.interA.cert))

	cfg := tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})
	require.NoError(t, handshake(t, p.genuine, cfg), "the genuine server passes")
	require.Empty(t, reports.all())

	err := handshake(t, p.impostor, cfg)
	require.ErrorIs(t, err, ErrPinMismatch)
	var pe *PinError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, host, pe.Host)
	require.Equal(t, []Pin{PinOf(p.impostor.Leaf), PinOf(p.rootB.cert)}, pe.Chain)

	got := reports.all()
	require.Len(t, got, 1)
	r := got[0]
	require.Equal(t, host, r.Host)
	require.Equal(t, Enforce, r.Mode)
	require.Equal(t, []Pin{PinOf(p.impostor.Leaf), PinOf(p.interA.cert)}, r.ServedChain)
	require.Equal(t, []Pin{PinOf(p.impostor.Leaf), PinOf(p.rootB.cert)}, r.VerifiedChain)
	require.Equal(t, set.Rules()[0].Pins, r.KnownPins)
}

func TestVerifyPinsOnAnyVerifiedCertificate(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	for name, pin := range map[string]Pin{
		"leaf": PinOf(p.genuine.Leaf), "intermediate": PinOf(p.interA.cert), "root": PinOf(p.rootA.cert),
	} {
		v := mustVerifier(t, Config{Pins: setFor(t, host, pin, randomPin(t))})
		require.NoError(t, handshake(t, p.genuine, tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})), name)
	}
	// Only backups: the served keys are not pinned.
	v := mustVerifier(t, Config{Pins: setFor(t, host, randomPin(t), randomPin(t))})
	require.ErrorIs(t, handshake(t, p.genuine, tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})), ErrPinMismatch)
}

func TestReportOnlyMode(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	reports := &collector{}
	clock := kvtest.NewClock()
	v := mustVerifier(t, Config{Pins: setFor(t, host, PinOf(p.interA.cert), randomPin(t)), Mode: ReportOnly, Reporter: reports, Now: clock.Now})
	cfg := tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})
	require.NoError(t, handshake(t, p.impostor, cfg), "report-only lets the connection through")
	got := reports.all()
	require.Len(t, got, 1)
	require.Equal(t, ReportOnly, got[0].Mode)
	require.Equal(t, testNow, got[0].Time)

	// Report-only also lets unpinned and nameless hosts through.
	other := p.rootA.leaf(t, []string{"other.example.com"})
	require.NoError(t, handshake(t, other, tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: "other.example.com"})))
	require.Len(t, reports.all(), 1, "an unpinned host is not a violation")
}

func TestUnpinnedHosts(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "api.example.com")
	other := p.rootA.leaf(t, []string{"other.example.com"})
	set := setFor(t, "api.example.com", PinOf(p.rootA.cert), randomPin(t))
	base := &tls.Config{RootCAs: p.roots, ServerName: "other.example.com"}

	strict := mustVerifier(t, Config{Pins: set})
	require.ErrorIs(t, handshake(t, other, tlsConfig(t, strict, base)), ErrHostNotPinned)

	lax := mustVerifier(t, Config{Pins: set, AllowUnpinnedHosts: true})
	require.NoError(t, handshake(t, other, tlsConfig(t, lax, base)))
}

func TestNoVerifiedChain(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "api.example.com")
	for _, mode := range []Mode{Enforce, ReportOnly} {
		v := mustVerifier(t, Config{Pins: setFor(t, "api.example.com", PinOf(p.rootA.cert), randomPin(t)), Mode: mode})
		cs := tls.ConnectionState{ServerName: "api.example.com", PeerCertificates: []*x509.Certificate{p.genuine.Leaf, p.interA.cert, p.rootA.cert}}
		require.ErrorIs(t, v.VerifyConnection(cs), ErrNoVerifiedChain, "the sent chain is never the basis")
		cs.VerifiedChains = [][]*x509.Certificate{{p.genuine.Leaf, p.interA.cert, p.rootA.cert}, {}}
		require.ErrorIs(t, v.VerifyConnection(cs), ErrNoVerifiedChain, "an empty chain")
		cs.VerifiedChains = cs.VerifiedChains[:1]
		require.NoError(t, v.VerifyConnection(cs))

		_, err := v.TLSConfig(&tls.Config{InsecureSkipVerify: true})
		require.ErrorIs(t, err, ErrUnsafeTLSConfig)
	}
}

func TestExpiredSetInVerifier(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	for _, tc := range []struct {
		after AfterExpiry
		want  error
	}{{KeepEnforcing, ErrPinMismatch}, {StopEnforcing, nil}} {
		set, err := NewSet(SetConfig{Rules: []Rule{{Pattern: host, Pins: []Pin{randomPin(t), randomPin(t)}}}, Expires: testNow.Add(time.Hour), AfterExpiry: tc.after})
		require.NoError(t, err)
		clock := kvtest.NewClock()
		v := mustVerifier(t, Config{Pins: set, Now: clock.Now})
		cfg := tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})
		require.ErrorIs(t, handshake(t, p.genuine, cfg), ErrPinMismatch, "before expiry")
		clock.Advance(2 * time.Hour)
		err = handshake(t, p.genuine, cfg)
		if tc.want == nil {
			require.NoError(t, err, tc.after.String())
		} else {
			require.ErrorIs(t, err, tc.want, tc.after.String())
		}
	}
}

func TestChainsCallersVerifyConnection(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	v := mustVerifier(t, Config{Pins: setFor(t, host, PinOf(p.interA.cert), randomPin(t))})
	var calls atomic.Int32
	mine := errors.New("caller says no")
	base := &tls.Config{RootCAs: p.roots, ServerName: host, VerifyConnection: func(tls.ConnectionState) error {
		calls.Add(1)
		return mine
	}}
	cfg := tlsConfig(t, v, base)
	require.ErrorIs(t, handshake(t, p.genuine, cfg), mine, "the caller's check still runs")
	require.EqualValues(t, 1, calls.Load())
	require.ErrorIs(t, handshake(t, p.impostor, cfg), ErrPinMismatch, "pins are checked first")
	require.EqualValues(t, 1, calls.Load())
	require.NotNil(t, base.VerifyConnection, "base is not modified")
	require.Nil(t, cfg.Certificates)
}

// swapSource is a Source whose set can change between handshakes.
type swapSource struct{ p atomic.Pointer[Set] }

func (s *swapSource) Current() *Set { return s.p.Load() }

func TestSourceIsReadPerHandshake(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	src := &swapSource{}
	src.p.Store(setFor(t, host, PinOf(p.rootA.cert), randomPin(t)))
	v := mustVerifier(t, Config{Pins: src})
	cfg := tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host})
	require.NoError(t, handshake(t, p.genuine, cfg))
	src.p.Store(setFor(t, host, randomPin(t), randomPin(t)))
	require.ErrorIs(t, handshake(t, p.genuine, cfg), ErrPinMismatch)
	src.p.Store(nil)
	require.ErrorIs(t, handshake(t, p.genuine, cfg), ErrInvalidSet, "a source without a set fails closed")
}

func TestNewVerifierRequiresPins(t *testing.T) {
	t.Parallel()
	_, err := NewVerifier(Config{})
	require.ErrorIs(t, err, ErrInvalidSet)
	_, err = NewVerifier(Config{Pins: (*Set)(nil)})
	require.ErrorIs(t, err, ErrInvalidSet)
	_, err = NewVerifier(Config{Pins: setFor(t, "a.example.com", randomPin(t), randomPin(t)), Mode: 9})
	require.Error(t, err)
}

// startServer starts an HTTPS server on 127.0.0.1 serving cert.
func startServer(t testing.TB, cert tls.Certificate, h2 bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, c *http.Client, u string) (string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The travel example's story: the app pins its server's key (plus an
// offline backup); a second server with another certificate from the same
// trusted CA, on the same host, is refused.
func TestClientPinsLoopbackServer(t *testing.T) {
	t.Parallel()
	root := newRoot(t, "Travel Root")
	good := startServer(t, root.leaf(t, []string{"127.0.0.1", "localhost"}), true)
	rogue := startServer(t, root.leaf(t, []string{"127.0.0.1", "localhost"}), false)

	_, backup, err := GenerateBackup()
	require.NoError(t, err)
	set, err := NewSet(SetConfig{Rules: []Rule{
		{Pattern: "127.0.0.1", Pins: []Pin{PinOf(good.TLS.Certificates[0].Leaf), backup}},
		{Pattern: "localhost", Pins: []Pin{PinOf(good.TLS.Certificates[0].Leaf), backup}},
	}})
	require.NoError(t, err)

	client, err := NewClient(set, pool(root))
	require.NoError(t, err)
	proto, err := get(t, client, good.URL)
	require.NoError(t, err)
	require.Equal(t, "HTTP/2.0", proto, "HTTP/2 still negotiated")
	_, err = get(t, client, rogue.URL)
	require.ErrorIs(t, err, ErrPinMismatch)

	// By name too, with the port in the report.
	reports := &collector{}
	v := mustVerifier(t, Config{Pins: set, Reporter: reports})
	c2, err := v.Client(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(root)}}})
	require.NoError(t, err)
	u, err := url.Parse(rogue.URL)
	require.NoError(t, err)
	_, err = get(t, c2, "https://localhost:"+u.Port())
	require.ErrorIs(t, err, ErrPinMismatch)
	got := reports.all()
	require.Len(t, got, 1)
	require.Equal(t, "localhost", got[0].Host)
	require.Equal(t, u.Port(), strconv.Itoa(got[0].Port))
	proto, err = get(t, c2, good.URL)
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1", proto, "a plain transport stays on HTTP/1.1, as without pinning")
}

// Outside Transport, a connection to an IP address has no SNI name: the
// verifier cannot tell which pins apply and refuses.
func TestTLSConfigWithoutServerName(t *testing.T) {
	t.Parallel()
	root := newRoot(t, "Root")
	srv := startServer(t, root.leaf(t, []string{"127.0.0.1"}), false)
	set := setFor(t, "127.0.0.1", PinOf(srv.TLS.Certificates[0].Leaf), randomPin(t))
	v := mustVerifier(t, Config{Pins: set, AllowUnpinnedHosts: true})
	cfg := tlsConfig(t, v, &tls.Config{RootCAs: pool(root)})
	_, err := get(t, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, srv.URL)
	require.ErrorIs(t, err, ErrNoServerName)

	cfg = tlsConfig(t, v, &tls.Config{RootCAs: pool(root), ServerName: "127.0.0.1"})
	_, err = get(t, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, srv.URL)
	require.NoError(t, err)
}

func TestHelpersRefuseBypasses(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, Config{Pins: setFor(t, "a.example.com", randomPin(t), randomPin(t))})
	_, err := v.Transport(&http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return nil, nil }})
	require.ErrorIs(t, err, ErrUnsafeTLSConfig)
	_, err = v.Transport(&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})
	require.ErrorIs(t, err, ErrUnsafeTLSConfig)
	_, err = v.Client(&http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })})
	require.ErrorIs(t, err, ErrUnsafeTLSConfig)
	_, err = NewClient(setFor(t, "a.example.com", randomPin(t), randomPin(t)), nil)
	require.ErrorIs(t, err, ErrUnsafeTLSConfig, "the roots are an explicit choice")

	base := &http.Client{Timeout: 7 * time.Second}
	c, err := v.Client(base)
	require.NoError(t, err)
	require.Equal(t, 7*time.Second, c.Timeout)
	require.Nil(t, base.Transport, "base is not modified")
	_, ok := c.Transport.(*http.Transport)
	require.True(t, ok)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A resumed TLS session has its pins checked again (Go keeps the verified
// chains in the session): a set changed since refuses it.
func TestResumedSessionIsChecked(t *testing.T) {
	t.Parallel()
	const host = "api.example.com"
	p := newPKI(t, host)
	ln := serveTLS(t, p.genuine, func(s *tls.Conn) {
		_, _ = s.Write([]byte("x")) // after the session ticket
		_, _ = s.Read(make([]byte, 1))
	})
	src := &swapSource{}
	src.p.Store(setFor(t, host, PinOf(p.rootA.cert), randomPin(t)))
	v := mustVerifier(t, Config{Pins: src})
	cfg := tlsConfig(t, v, &tls.Config{RootCAs: p.roots, ServerName: host, ClientSessionCache: tls.NewLRUClientSessionCache(4)})
	connect := func() (bool, error) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return false, err
		}
		_, err = tc.Read(make([]byte, 1))
		require.NoError(t, err)
		return tc.ConnectionState().DidResume, nil
	}
	resumed, err := connect()
	require.NoError(t, err)
	require.False(t, resumed)
	resumed, err = connect()
	require.NoError(t, err)
	require.True(t, resumed, "the second connection resumes")
	src.p.Store(setFor(t, host, randomPin(t), randomPin(t)))
	_, err = connect()
	require.ErrorIs(t, err, ErrPinMismatch)
}
