package pinning

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Mode is what a verifier does when a verified chain has none of the
// host's pins.
type Mode uint8

const (
	// Enforce refuses the connection (and reports it). The zero value.
	Enforce Mode = iota
	// ReportOnly lets the connection through and only reports it: the
	// stage before enforcing, to see whether a pin set would lock real
	// users out. It gives no protection.
	ReportOnly
)

// String returns "enforce" or "report-only".
func (m Mode) String() string {
	switch m {
	case Enforce:
		return "enforce"
	case ReportOnly:
		return "report-only"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText returns the String form; an unknown mode is an error.
func (m Mode) MarshalText() ([]byte, error) {
	if m > ReportOnly {
		return nil, fmt.Errorf("moat/pinning: unknown mode %d", m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses "enforce" or "report-only".
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "enforce":
		*m = Enforce
	case "report-only":
		*m = ReportOnly
	default:
		return fmt.Errorf("%w: mode must be enforce or report-only", ErrInvalidReport)
	}
	return nil
}

// A Source supplies the pin set a verifier enforces. It is read at every
// handshake, so a [*Refresher] can swap in a newer set at any time; a
// fixed [*Set] is a Source that returns itself. Current must be safe for
// concurrent use, fast, and never return nil.
type Source interface {
	Current() *Set
}

// Config configures a [Verifier].
type Config struct {
	// Pins supplies the pin set: a *Set, or a *Refresher that keeps a
	// signed set fresh. Required.
	Pins Source
	// Mode is Enforce (the zero value) or ReportOnly.
	Mode Mode
	// AllowUnpinnedHosts lets connections to hosts no rule covers through
	// with ordinary certificate verification only. False (the zero value)
	// refuses them with ErrHostNotPinned: an app's pinned client talks to
	// its own servers only.
	AllowUnpinnedHosts bool
	// Reporter receives a [Report] for every violation, in both modes. It
	// must not block (a [*ReportSender] does not). Nil sends none.
	Reporter Reporter
	// Now returns the current time, for the set's expiry. Nil means
	// time.Now.
	Now func() time.Time
}

// A Verifier checks TLS connections against a pin set. Its
// [Verifier.VerifyConnection] fits tls.Config.VerifyConnection; its
// TLSConfig, Transport and Client methods wrap the caller's own
// configuration. A Verifier is safe for concurrent use.
type Verifier struct {
	src           Source
	mode          Mode
	allowUnpinned bool
	reporter      Reporter
	now           func() time.Time
}

// dialTimeout is the TCP dial timeout and keep-alive period when the base
// transport has no dialer of its own (http.DefaultTransport's values).
const dialTimeout = 30 * time.Second

// NewVerifier returns a verifier for cfg. Pins is required, and Mode must
// be Enforce or ReportOnly.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Pins == nil || cfg.Pins.Current() == nil {
		return nil, fmt.Errorf("%w: Config.Pins is required", ErrInvalidSet)
	}
	if cfg.Mode > ReportOnly {
		return nil, fmt.Errorf("moat/pinning: unknown mode %d", cfg.Mode)
	}
	v := &Verifier{src: cfg.Pins, mode: cfg.Mode, allowUnpinned: cfg.AllowUnpinnedHosts, reporter: cfg.Reporter, now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// VerifyConnection checks cs as tls.Config.VerifyConnection does, taking
// the host from cs.ServerName (the SNI name, which is empty for an IP
// address: such a connection is refused with [ErrNoServerName]; use
// [Verifier.Transport], or [Verifier.TLSConfig] with ServerName set).
//
// It passes when a certificate on one of cs.VerifiedChains carries one of
// the host's pins. cs.PeerCertificates, the chain the server sent, is never
// the basis: a server can append any genuine certificate to it. No
// verified chain, or an empty one, is [ErrNoVerifiedChain] in both modes.
// In Enforce mode a mismatch is a [*PinError]; in ReportOnly mode it is
// reported and nil is returned.
func (v *Verifier) VerifyConnection(cs tls.ConnectionState) error {
	return v.verify(cs.ServerName, 0, cs)
}

func (v *Verifier) verify(host string, port int, cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 {
		return ErrNoVerifiedChain
	}
	for _, c := range cs.VerifiedChains {
		if len(c) == 0 {
			return ErrNoVerifiedChain
		}
	}
	set := v.src.Current()
	if set == nil {
		return fmt.Errorf("%w: the pin source returned no set", ErrInvalidSet)
	}
	if !set.Enforced(v.now()) {
		return nil
	}
	if host == "" {
		return v.refuse(ErrNoServerName)
	}
	pinned, matched := set.check(host, cs.VerifiedChains)
	switch {
	case matched:
		return nil
	case !pinned:
		if v.allowUnpinned {
			return nil
		}
		return v.refuse(fmt.Errorf("%w: %q", ErrHostNotPinned, host))
	}
	h, _, _ := normalizeHost(host)
	known, _ := set.PinsFor(h)
	verified := chainPins(cs.VerifiedChains[:1])
	if v.reporter != nil {
		served := cs.PeerCertificates[:min(len(cs.PeerCertificates), maxReportChain)]
		r := Report{
			Host:          h,
			Port:          port,
			Time:          v.now().UTC().Truncate(time.Second),
			Mode:          v.mode,
			ServedChain:   chainPins([][]*x509.Certificate{served}),
			VerifiedChain: verified,
			KnownPins:     known,
			PinSetVersion: set.Version(),
		}
		r.truncate()
		v.reporter.Report(r)
	}
	return v.refuse(&PinError{Host: h, Port: port, Chain: verified, Pins: known})
}

// refuse returns err in Enforce mode and nil in ReportOnly mode.
func (v *Verifier) refuse(err error) error {
	if v.mode == ReportOnly {
		return nil
	}
	return err
}

// chain returns a VerifyConnection function that checks pins for host
// (cs.ServerName when empty) and port, then runs prior if there is one.
func (v *Verifier) chain(prior func(tls.ConnectionState) error, host string, port int) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		h := host
		if h == "" {
			h = cs.ServerName
		}
		if err := v.verify(h, port, cs); err != nil {
			return err
		}
		if prior != nil {
			return prior(cs)
		}
		return nil
	}
}

// TLSConfig returns a clone of base (nil: an empty config, so the system
// roots) whose VerifyConnection checks pins and then runs base's own
// VerifyConnection, if any. The host whose pins apply is base.ServerName
// when set, else the connection's SNI name. A base with
// InsecureSkipVerify is refused with [ErrUnsafeTLSConfig]: there would be
// no verified chain to check pins against.
func (v *Verifier) TLSConfig(base *tls.Config) (*tls.Config, error) {
	if base == nil {
		base = &tls.Config{}
	}
	if base.InsecureSkipVerify {
		return nil, fmt.Errorf("%w: InsecureSkipVerify leaves no verified chain to pin", ErrUnsafeTLSConfig)
	}
	cfg := base.Clone()
	cfg.VerifyConnection = v.chain(base.VerifyConnection, base.ServerName, 0)
	return cfg, nil
}

// Transport returns a clone of base (nil: a clone of
// http.DefaultTransport) that pins every TLS connection it makes. Its TLS
// dialer knows each connection's host and port (so IP addresses can be
// pinned and reports carry the port); its TLSClientConfig is base's,
// wrapped by [Verifier.TLSConfig], for TLS through an HTTP proxy's CONNECT
// tunnel. Through an HTTPS proxy, the connection to the proxy is pinned
// too (give the proxy a rule, or set AllowUnpinnedHosts).
//
// A base with its own DialTLS or DialTLSContext, or whose TLSClientConfig
// has InsecureSkipVerify, is refused with [ErrUnsafeTLSConfig]: its
// connections would not be pinned. Do not replace the returned
// transport's dialers or TLSClientConfig.
func (v *Verifier) Transport(base *http.Transport) (*http.Transport, error) {
	var t *http.Transport
	if base == nil {
		dt, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("%w: http.DefaultTransport is not an *http.Transport", ErrUnsafeTLSConfig)
		}
		t = dt.Clone()
	} else {
		t = base.Clone()
	}
	if t.DialTLS != nil || t.DialTLSContext != nil {
		return nil, fmt.Errorf("%w: the transport has its own TLS dialer", ErrUnsafeTLSConfig)
	}
	var prior func(tls.ConnectionState) error
	if t.TLSClientConfig != nil {
		prior = t.TLSClientConfig.VerifyConnection
	}
	cfg, err := v.TLSConfig(t.TLSClientConfig)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = cfg
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout, KeepAlive: dialTimeout}).DialContext
	}
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			return nil, fmt.Errorf("moat/pinning: bad port in %q", addr)
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Read the transport's config now: HTTP/2 setup adds "h2" to its
		// NextProtos before the first dial.
		c := t.TLSClientConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = host
		}
		c.VerifyConnection = v.chain(prior, c.ServerName, port)
		conn := tls.Client(raw, c)
		hctx := ctx
		if t.TLSHandshakeTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.TLSHandshakeTimeout)
			defer cancel()
		}
		if err := conn.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return conn, nil
	}
	return t, nil
}

// Client returns a copy of base (nil: an empty client) whose transport is
// [Verifier.Transport] of base's. A base whose Transport is set but is not
// an *http.Transport is refused with [ErrUnsafeTLSConfig]: an opaque
// RoundTripper cannot be made to pin.
func (v *Verifier) Client(base *http.Client) (*http.Client, error) {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	var bt *http.Transport
	if c.Transport != nil {
		var ok bool
		if bt, ok = c.Transport.(*http.Transport); !ok {
			return nil, fmt.Errorf("%w: the client's Transport is a %T, not an *http.Transport", ErrUnsafeTLSConfig, c.Transport)
		}
	}
	t, err := v.Transport(bt)
	if err != nil {
		return nil, err
	}
	c.Transport = t
	return c, nil
}

// NewClient returns an *http.Client that enforces pins from src on every
// connection and trusts roots: required, so the choice is explicit (pass
// the result of x509.SystemCertPool for the system's roots). Hosts without
// a rule are refused. It is the short path; build a [Verifier] for report
// sending, report-only mode or your own transport settings.
func NewClient(src Source, roots *x509.CertPool) (*http.Client, error) {
	if roots == nil {
		return nil, fmt.Errorf("%w: NewClient needs the trusted roots (x509.SystemCertPool for the system's)", ErrUnsafeTLSConfig)
	}
	v, err := NewVerifier(Config{Pins: src})
	if err != nil {
		return nil, err
	}
	t, err := v.Transport(nil)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig.RootCAs = roots
	return &http.Client{Transport: t}, nil
}
