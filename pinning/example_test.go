package pinning_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/moatsec/moat/pinning"
)

// An app pins its server's key plus an offline backup key, and refuses a
// second server whose certificate is just as trusted but not pinned.
func ExampleNewClient() {
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer server.Close()
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned("127.0.0.1")}}
	other.StartTLS()
	defer other.Close()

	// Both certificates are trusted...
	roots := x509.NewCertPool()
	roots.AddCert(server.Certificate())
	roots.AddCert(other.TLS.Certificates[0].Leaf)

	// ...but only the first server's key is pinned, with a backup key
	// kept offline for the day the server's key must change.
	_, backup, err := pinning.GenerateBackup()
	if err != nil {
		panic(err)
	}
	set, err := pinning.NewSet(pinning.SetConfig{Rules: []pinning.Rule{
		{Pattern: "127.0.0.1", Pins: []pinning.Pin{pinning.PinOf(server.Certificate()), backup}},
	}})
	if err != nil {
		panic(err)
	}
	client, err := pinning.NewClient(set, roots)
	if err != nil {
		panic(err)
	}

	resp, err := client.Get(server.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("pinned server:", resp.Status)
	_, err = client.Get(other.URL)
	fmt.Println("other server refused:", errors.Is(err, pinning.ErrPinMismatch))
	// Output:
	// pinned server: 200 OK
	// other server refused: true
}

// selfSigned returns a self-signed certificate for an IP address.
func selfSigned(ip string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// The pins of a chain, as "moat pins compute --in" prints them.
func ExamplePinOf() {
	data, err := os.ReadFile("testdata/apple-doc-sample-appattest-chain.pem")
	if err != nil {
		panic(err)
	}
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			panic(err)
		}
		fmt.Println(pinning.PinOf(cert))
	}
	// Output:
	// sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=
	// sha256/YIGkqT2GtRADhRxA6OtxL+ujui99faxmyzx0cbJGZRo=
	// sha256/GudR/SmJbQ8fE/4ibAY/RF1A2JOKzGJFwlHswGeTML0=
}

// A server publishes its signed pin set at the well-known path; the app's
// refresher fetches it, checks the signature, version and expiry, saves
// it, and puts it in force for every later handshake.
func ExampleRefresher() {
	ctx := context.Background()
	signingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	pins := func(n int) []pinning.Pin {
		out := make([]pinning.Pin, n)
		for i := range out {
			_, out[i], _ = pinning.GenerateBackup()
		}
		return out
	}

	// Server side: sign version 2 (usually offline, with "moat pins sign").
	published := pinning.MustNewSet(pinning.SetConfig{
		Version: 2, Expires: time.Now().Add(90 * 24 * time.Hour), AfterExpiry: pinning.KeepEnforcing,
		Rules: []pinning.Rule{{Pattern: "**.example.com", Pins: pins(3)}},
	})
	doc, err := pinning.SignDocument(published, signingKey, time.Now())
	if err != nil {
		panic(err)
	}
	handler, err := pinning.NewDocumentHandler(doc)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(pinning.WellKnownPath, handler)
	server := httptest.NewTLSServer(mux)
	defer server.Close()

	// App side: the built-in set, then the published one.
	builtIn := pinning.MustNewSet(pinning.SetConfig{Rules: []pinning.Rule{{Pattern: "**.example.com", Pins: pins(2)}}})
	refresher, err := pinning.NewRefresher(ctx, pinning.RefresherConfig{
		URL:     server.URL + pinning.WellKnownPath,
		Keys:    []crypto.PublicKey{signingKey.Public()},
		Initial: builtIn,
		Store:   &pinning.MemoryStore{}, // pinning.NewFileStore(path) on a device
		Client:  server.Client(),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("before:", refresher.Current().Version())
	if err := refresher.Refresh(ctx); err != nil { // go refresher.Run(ctx) in an app
		panic(err)
	}
	fmt.Println("after:", refresher.Current().Version())
	pinned, _ := refresher.Current().PinsFor("api.example.com")
	fmt.Println("pins for api.example.com:", len(pinned))
	// Output:
	// before: 0
	// after: 2
	// pins for api.example.com: 3
}

// The server end of violation reports: validate, then hand to analytics.
func ExampleNewReportHandler() {
	received := make(chan pinning.Report, 1)
	handler, err := pinning.NewReportHandler(pinning.ReportHandlerConfig{
		OnReport: func(ctx context.Context, r pinning.Report) { received <- r },
	})
	if err != nil {
		panic(err)
	}
	server := httptest.NewServer(handler)
	defer server.Close()

	// The app end: a sender that never blocks the handshake reporting.
	sender, err := pinning.NewReportSender(pinning.ReportSenderConfig{URL: server.URL})
	if err != nil {
		panic(err)
	}
	defer sender.Close()
	pin, _ := pinning.ParsePin("sha256/x4QzPSC810K5/cMjb05Qm4k3Bw5zBn4lTdO/nEW/Td4=")
	_, known, _ := pinning.GenerateBackup()
	sender.Report(pinning.Report{
		Host: "api.example.com", Port: 443, Time: time.Now(), Mode: pinning.Enforce,
		ServedChain: []pinning.Pin{pin}, VerifiedChain: []pinning.Pin{pin}, KnownPins: []pinning.Pin{known},
	})
	r := <-received
	fmt.Println(r.Host, r.Port, r.Mode, r.ServedChain[0])
	// Output:
	// api.example.com 443 enforce sha256/x4QzPSC810K5/cMjb05Qm4k3Bw5zBn4lTdO/nEW/Td4=
}
