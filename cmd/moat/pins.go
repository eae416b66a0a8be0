package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moatsec/moat/pinning"
)

func init() {
	register(command{name: "pins", summary: "compute, check, sign and verify certificate pins", run: runPins})
}

var pinsSubcommands = []subcommand{
	{name: "compute", summary: "print the SPKI pin of each certificate of a chain", run: runPinsCompute},
	{name: "check", summary: "check a chain against a pin set, with warnings", run: runPinsCheck},
	{name: "sign", summary: "sign a pin set as a document to publish", run: runPinsSign},
	{name: "verify", summary: "verify a signed pin-set document", run: runPinsVerify},
	{name: "backup", summary: "generate a backup key and print its pin", run: runPinsBackup},
}

func runPins(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "pins", pinsSubcommands, args)
}

// pinsDialTimeout bounds "pins compute --host".
const pinsDialTimeout = 15 * time.Second

func runPinsCompute(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "pins compute", "moat pins compute (--in FILE.pem | --host HOST:PORT [--roots FILE.pem])\n\n"+
		"Prints one line per certificate, \"sha256/BASE64  SUBJECT\": for --in, in the file's order; for --host,\n"+
		"the chain the connection verified, leaf to root (verified with --roots, or the system roots).")
	in := fs.String("in", "", "PEM file of certificates")
	host := fs.String("host", "", "server to connect to, HOST:PORT")
	roots := fs.String("roots", "", "PEM file of trusted roots for --host (default: the system roots)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "pins compute takes no arguments")
	}
	if (*in == "") == (*host == "") {
		return usageErrorf(std, "pins compute needs exactly one of --in and --host")
	}
	if *roots != "" && *host == "" {
		return usageErrorf(std, "--roots goes with --host")
	}
	var chain []*x509.Certificate
	if *in != "" {
		var err error
		if chain, err = readCertificates(*in); err != nil {
			return usageErrorf(std, "%v", err)
		}
	} else {
		var code int
		if chain, code = fetchVerifiedChain(ctx, std, *host, *roots); code != exitOK {
			return code
		}
	}
	for _, c := range chain {
		fmt.Fprintf(std.out, "%s  %s\n", pinning.PinOf(c), c.Subject)
	}
	return exitOK
}

// fetchVerifiedChain connects to hostPort and returns the first verified
// chain, or an exit code: 1 when the chain does not verify, 2 when the
// connection fails or the roots cannot be read.
func fetchVerifiedChain(ctx context.Context, std stdio, hostPort, rootsFile string) ([]*x509.Certificate, int) {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, usageErrorf(std, "--host must be HOST:PORT: %v", err)
	}
	cfg := &tls.Config{ServerName: host}
	if rootsFile != "" {
		certs, err := readCertificates(rootsFile)
		if err != nil {
			return nil, usageErrorf(std, "%v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		for _, c := range certs {
			cfg.RootCAs.AddCert(c)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pinsDialTimeout)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", hostPort)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			fmt.Fprintf(std.err, "moat: %s: the certificate chain does not verify: %v\n", hostPort, verr.Err)
			return nil, exitRefused
		}
		return nil, usageErrorf(std, "connecting to %s: %v", hostPort, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().VerifiedChains[0], exitOK
}

func runPinsCheck(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "pins check", "moat pins check --pins FILE.json --chain FILE.pem --host NAME [--at RFC3339]\n\n"+
		"Says whether the chain (leaf first, as the server will send it) passes the pin set for the host, and warns\n"+
		"when no backup pin is outside the chain, the set expires within 30 days, or the leaf does not fit the host.\n"+
		"Exit 0 when it passes (even with warnings), 1 when it is refused.")
	pinsFile := fs.String("pins", "", "pin set, JSON (the form \"moat pins sign\" takes)")
	chainFile := fs.String("chain", "", "PEM file of the chain, leaf first")
	host := fs.String("host", "", "host name the chain serves")
	at := fs.String("at", "", "time to judge at, RFC 3339 (default: now)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *pinsFile == "" || *chainFile == "" || *host == "" {
		return usageErrorf(std, "pins check needs --pins, --chain and --host, and no arguments")
	}
	set, now, code := readSetAt(std, *pinsFile, *at)
	if code != exitOK {
		return code
	}
	chain, err := readCertificates(*chainFile)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	warnings := set.Warnings(*host, chain, now)
	if err := chain[0].VerifyHostname(*host); err != nil {
		warnings = append(warnings, fmt.Sprintf("the leaf certificate is not valid for %q: %v", *host, err))
	}
	for i, c := range chain {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			warnings = append(warnings, fmt.Sprintf("certificate %d (%s) is not valid at %s (valid %s to %s)", i, c.Subject,
				now.Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	err = set.VerifyChain(*host, chain, now)
	if err == nil {
		if !set.Enforced(now) {
			fmt.Fprintf(std.out, "PASS: the set has expired and stops enforcing: %q is not pinned\n", *host)
		} else {
			pins, _ := set.PinsFor(*host)
			for i, c := range chain {
				if p := pinning.PinOf(c); slices.Contains(pins, p) {
					fmt.Fprintf(std.out, "PASS: %s matches certificate %d (%s)\n", p, i, c.Subject)
					break
				}
			}
		}
	} else {
		fmt.Fprintf(std.out, "REFUSED: %v\n", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(std.out, "warning: %s\n", w)
	}
	if err != nil {
		return exitRefused
	}
	return exitOK
}

func runPinsSign(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "pins sign", "moat pins sign --pins FILE.json --key KEY.pem [--at RFC3339] [--out FILE]\n\n"+
		"Signs a pin set (JSON with version, expires, after_expiry and rules) as a compact JWS to publish at\n"+
		pinning.WellKnownPath+". The key is an ECDSA P-256 (ES256) or Ed25519 (EdDSA) private key in PEM.")
	pinsFile := fs.String("pins", "", "pin set, JSON")
	keyFile := fs.String("key", "", "signing key, PEM (PKCS #8 or SEC 1)")
	at := fs.String("at", "", "issued-at time, RFC 3339 (default: now)")
	out := fs.String("out", "", "write the document here instead of standard output")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *pinsFile == "" || *keyFile == "" {
		return usageErrorf(std, "pins sign needs --pins and --key, and no arguments")
	}
	set, now, code := readSetAt(std, *pinsFile, *at)
	if code != exitOK {
		return code
	}
	key, err := readPrivateKey(*keyFile)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	doc, err := pinning.SignDocument(set, key, now)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	raw := append(doc.Raw(), '\n')
	if *out == "" {
		_, _ = std.out.Write(raw)
		return exitOK
	}
	if err := os.WriteFile(*out, raw, 0o644); err != nil {
		return usageErrorf(std, "%v", err)
	}
	fmt.Fprintf(std.out, "signed version %d, expires %s: %s\n", set.Version(), set.Expires().Format(time.RFC3339), *out)
	return exitOK
}

func runPinsVerify(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "pins verify", "moat pins verify --doc FILE --pubkey FILE.pem [--pubkey ...] [--at RFC3339]\n\n"+
		"Verifies a signed pin-set document as an app would (signature, form, expiry) and prints its set.\n"+
		"Exit 0 when it is good, 1 when it is refused.")
	docFile := fs.String("doc", "", "the signed document")
	var pubFiles multiFlag
	fs.Var(&pubFiles, "pubkey", "publisher's public key or certificate, PEM (repeat while keys rotate)")
	at := fs.String("at", "", "time to judge expiry at, RFC 3339 (default: now)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *docFile == "" || len(pubFiles) == 0 {
		return usageErrorf(std, "pins verify needs --doc and at least one --pubkey, and no arguments")
	}
	now, code := parseAt(std, *at)
	if code != exitOK {
		return code
	}
	var keys []crypto.PublicKey
	for _, f := range pubFiles {
		k, err := readPublicKey(f)
		if err != nil {
			return usageErrorf(std, "%v", err)
		}
		keys = append(keys, k)
	}
	data, err := readFile(*docFile)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	doc, err := pinning.ParseDocument(data, keys)
	if errors.Is(err, pinning.ErrUnsupportedKey) {
		return usageErrorf(std, "%v", err)
	}
	if err != nil {
		fmt.Fprintf(std.out, "REFUSED: %v\n", err)
		return exitRefused
	}
	set := doc.Set
	if set.Expired(now) {
		fmt.Fprintf(std.out, "REFUSED: %v: version %d expired at %s\n", pinning.ErrDocumentExpired, set.Version(), set.Expires().Format(time.RFC3339))
		return exitRefused
	}
	fmt.Fprintf(std.out, "OK: version %d, issued %s, expires %s (after expiry: %s)\n", set.Version(),
		doc.IssuedAt.Format(time.RFC3339), set.Expires().Format(time.RFC3339), set.AfterExpiry())
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	fmt.Fprintf(std.out, "%s\n", b)
	return exitOK
}

func runPinsBackup(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "pins backup", "moat pins backup --out KEY.pem\n\n"+
		"Generates a P-256 key to be a backup pin, writes it (PKCS #8 PEM, mode 0600, never overwriting) and prints\n"+
		"its pin. Put the pin in the set; keep the key offline until the day the server's key must change.")
	out := fs.String("out", "", "where to write the private key")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *out == "" {
		return usageErrorf(std, "pins backup needs --out, and no arguments")
	}
	key, pin, err := pinning.GenerateBackup()
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		return usageErrorf(std, "writing %s: %v", *out, err)
	}
	fmt.Fprintln(std.out, pin)
	return exitOK
}

// parseAt parses an --at flag; empty means now.
func parseAt(std stdio, at string) (time.Time, int) {
	if at == "" {
		return time.Now(), exitOK
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return time.Time{}, usageErrorf(std, "--at must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t, exitOK
}

// readSetAt reads the --pins set and the --at time, or returns the exit
// code of a usage error.
func readSetAt(std stdio, pinsFile, at string) (*pinning.Set, time.Time, int) {
	now, code := parseAt(std, at)
	if code != exitOK {
		return nil, now, code
	}
	set, err := readSet(pinsFile)
	if err != nil {
		return nil, now, usageErrorf(std, "%v", err)
	}
	return set, now, exitOK
}

// readSet reads a pin set's JSON form.
func readSet(path string) (*pinning.Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(string(data)); strings.HasPrefix(s, "ey") && strings.Count(s, ".") == 2 {
		return nil, fmt.Errorf("%s is a signed document: use \"moat pins verify\" to read it; this flag takes the set's JSON", path)
	}
	set, err := pinning.ParseSet(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// pemBlocks returns the PEM blocks of a file, or an error if it has none.
// It also reads bundles made by joining files that lack a final newline
// ("-----END CERTIFICATE----------BEGIN CERTIFICATE-----"), as some
// published chains are.
func pemBlocks(path string) ([]*pem.Block, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.ReplaceAll(data, []byte("----------BEGIN "), []byte("-----\n-----BEGIN "))
	var blocks []*pem.Block
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s: no PEM data", path)
	}
	return blocks, nil
}

// readCertificates reads the certificates of a PEM file, in order.
func readCertificates(path string) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", path, len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificates", path)
	}
	return certs, nil
}

// readPrivateKey reads a PKCS #8 or SEC 1 private key. Errors never
// include the key's bytes.
func readPrivateKey(path string) (crypto.Signer, error) {
	blocks, err := pemBlocks(path)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		var key any
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the private key does not parse", path)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%s: %w", path, pinning.ErrUnsupportedKey)
	}
	return nil, fmt.Errorf("%s: no PRIVATE KEY or EC PRIVATE KEY block", path)
}
