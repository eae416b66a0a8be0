package pinning

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv/kvtest"
)

// testNow is the fixed time the tests run at: kvtest.NewClock's.
var testNow = kvtest.NewClock().Now()

// testCA is a certificate authority the tests generate.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	require.NoError(t, err)
	return n
}

// newRoot returns a self-signed root CA.
func newRoot(t testing.TB, name string) *testCA { return issueCA(t, name, nil) }

// intermediate returns a CA issued by ca.
func (ca *testCA) intermediate(t testing.TB, name string) *testCA { return issueCA(t, name, ca) }

// issueCA returns a CA issued by parent, or self-signed when parent is nil.
func issueCA(t testing.TB, name string, parent *testCA) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key}
}

// leaf issues a server certificate for hosts (names or IP addresses) and
// returns it with the chain served: the leaf, then extra.
func (ca *testCA) leaf(t testing.TB, hosts []string, extra ...*x509.Certificate) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	tc := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	for _, e := range extra {
		tc.Certificate = append(tc.Certificate, e.Raw)
	}
	return tc
}

// pool returns a cert pool holding cas' certificates.
func pool(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

// handshake runs a TLS handshake on loopback TCP between a server serving
// cert and a client with cfg, and returns the client's error. (An
// unbuffered net.Pipe can deadlock when both sides write at once, as when
// the client sends an alert while the server sends its flight.)
func handshake(t testing.TB, cert tls.Certificate, cfg *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	err = tls.Client(c, cfg).Handshake()
	_ = c.Close()
	<-done
	return err
}

// serveTLS accepts connections on a loopback listener until the test ends,
// handshakes as a server with cert, then runs after (if not nil).
func serveTLS(t testing.TB, cert tls.Certificate, after func(*tls.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				s := tls.Server(c, cfg)
				if s.Handshake() == nil && after != nil {
					after(s)
				}
			}()
		}
	}()
	return ln
}

// readPEMChain reads the certificates of a PEM file in testdata.
func readPEMChain(t testing.TB, name string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		require.NoError(t, err)
		certs = append(certs, c)
	}
	require.NotEmpty(t, certs)
	return certs
}

// mustPin parses a pin or fails the test.
func mustPin(t testing.TB, s string) Pin {
	t.Helper()
	p, err := ParsePin(s)
	require.NoError(t, err)
	return p
}

// randomPin returns the pin of a fresh key, in no chain.
func randomPin(t testing.TB) Pin {
	t.Helper()
	p, err := PinOfPublicKey(&newKey(t).PublicKey)
	require.NoError(t, err)
	return p
}

// setFor returns a set with one rule for pattern and pins.
func setFor(t testing.TB, pattern string, pins ...Pin) *Set {
	t.Helper()
	s, err := NewSet(SetConfig{Rules: []Rule{{Pattern: pattern, Pins: pins}}})
	require.NoError(t, err)
	return s
}
