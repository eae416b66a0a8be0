package pinning

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

// BenchmarkVerifyConnection measures a full TLS 1.3 handshake on loopback
// TCP (ECDSA P-256, a leaf-intermediate-root chain, no session
// resumption) without pinning ("baseline") and with it ("pinned", the pin
// on the intermediate so the leaf is hashed and missed first). "check" is
// the pin check alone on a connection state, for scale.
func BenchmarkVerifyConnection(b *testing.B) {
	const host = "api.example.com"
	p := newPKI(b, host)
	ln := serveTLS(b, p.genuine, nil)
	base := &tls.Config{RootCAs: p.roots, ServerName: host, MinVersion: tls.VersionTLS13}
	v := mustVerifier(b, Config{Pins: setFor(b, host, PinOf(p.interA.cert), randomPin(b))})
	pinned := tlsConfig(b, v, base)

	run := func(b *testing.B, cfg *tls.Config) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			if err := tls.Client(c, cfg).Handshake(); err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
		}
	}
	b.Run("baseline", func(b *testing.B) { run(b, base) })
	b.Run("pinned", func(b *testing.B) { run(b, pinned) })
	b.Run("check", func(b *testing.B) {
		cs := tls.ConnectionState{ServerName: host, VerifiedChains: [][]*x509.Certificate{{p.genuine.Leaf, p.interA.cert, p.rootA.cert}}}
		b.ReportAllocs()
		for b.Loop() {
			if err := v.VerifyConnection(cs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
