package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/pinning"
)

// The shared test data, as copied into the pinning package.
const (
	appleChainPEM = "../../pinning/testdata/apple-doc-sample-appattest-chain.pem"
	userTrustPEM  = "../../pinning/testdata/signal-apns-certificates.pem"
	appleLeafPin  = "sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE="
	appleCAPin    = "sha256/YIGkqT2GtRADhRxA6OtxL+ujui99faxmyzx0cbJGZRo="
	appleRootPin  = "sha256/GudR/SmJbQ8fE/4ibAY/RF1A2JOKzGJFwlHswGeTML0="
	userTrustPin  = "sha256/x4QzPSC810K5/cMjb05Qm4k3Bw5zBn4lTdO/nEW/Td4="
	// appleChainValidAt is when the manifest says the chain validates.
	appleChainValidAt = "2024-04-18T12:00:00Z"
)

// The manifests' pins, reproduced.
func TestPinsComputeFile(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", nil, "pins", "compute", "--in", appleChainPEM)
	require.Equal(t, exitOK, code)
	require.Equal(t, ""+
		appleLeafPin+"  CN=6d2ac4845f1323322f5923f0bd9d22dbe50e06b7b80121fce2b2b5e66e9e98d6,OU=AAA Certification,O=Apple Inc.,ST=California\n"+
		appleCAPin+"  CN=Apple App Attestation CA 1,O=Apple Inc.,ST=California\n"+
		appleRootPin+"  CN=Apple App Attestation Root CA,O=Apple Inc.,ST=California\n", out)

	code, out, _ = runCLI(t, "", nil, "pins", "compute", "--in", userTrustPEM)
	require.Equal(t, exitOK, code)
	require.Equal(t, userTrustPin+"  CN=USERTrust RSA Certification Authority,O=The USERTRUST Network,L=Jersey City,ST=New Jersey,C=US\n", out)

	// The appattest manifest's root: the same key as the chain's root.
	code, out, _ = runCLI(t, "", nil, "pins", "compute", "--in", "../../pinning/testdata/Apple_App_Attestation_Root_CA.pem")
	require.Equal(t, exitOK, code)
	require.Equal(t, appleRootPin+"  CN=Apple App Attestation Root CA,O=Apple Inc.,ST=California\n", out)

	// A bundle joined without newlines between certificates (the androidkey
	// manifest's google/android-key-attestation chain) reads in order; its
	// root has the Google RSA root's key.
	code, out, stderr := runCLI(t, "", nil, "pins", "compute", "--in", td("androidkey/google-android-key-attestation_EC_TEE_chain.pem"))
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, ""+
		"sha256/tavNR8DQ8Pi86XnJRQbVXBoZ+uCqR4xvoH2ApZ7hYG0=  CN=Android Keystore Key\n"+
		"sha256/+5URqCHNEZabml0SEBAiAiUCACf2/M97fjtIXOaUuDA=  SERIALNUMBER=2dc58b2d1a241326,2.5.4.12=#1303544545\n"+
		"sha256/Q5fIPMF53ys0PNppuKYAFKiEraCbOqJjI3PWLsEoJM0=  SERIALNUMBER=2960cb9aebd505f4,2.5.4.12=#1303544545\n"+
		"sha256//rLqdVHuMW7Uu0Q8gpO4hNv96kC2A+4+T0qJfkWA+64=  SERIALNUMBER=f92009e853b6b045\n", out)
}

func TestPinsComputeHost(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	addr := srv.Listener.Addr().String()

	code, out, stderr := runCLI(t, "", nil, "pins", "compute", "--host", addr, "--roots", roots)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, pinning.PinOf(srv.Certificate()).String()+"  "+srv.Certificate().Subject.String()+"\n", out)

	// Without the server's root, its chain does not verify: refused.
	other := filepath.Join(dir, "other.pem")
	data, err := os.ReadFile(userTrustPEM)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(other, data, 0o600))
	code, _, stderr = runCLI(t, "", nil, "pins", "compute", "--host", addr, "--roots", other)
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "does not verify")

	code, _, _ = runCLI(t, "", nil, "pins", "compute", "--host", "127.0.0.1:1", "--roots", roots)
	require.Equal(t, exitUsage, code, "a connection that fails is not an answer")
}

func TestPinsComputeUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"pins", "compute"},
		{"pins", "compute", "--in", appleChainPEM, "--host", "a:1"},
		{"pins", "compute", "--in", appleChainPEM, "--roots", appleChainPEM},
		{"pins", "compute", "--in", "missing.pem"},
		{"pins", "compute", "--in", "pins_test.go"},
		{"pins", "compute", "--host", "no-port"},
		{"pins", "compute", "--in", appleChainPEM, "extra"},
		{"pins", "frobnicate"},
		{"pins"},
	} {
		code, _, _ := runCLI(t, "", nil, args...)
		require.Equal(t, exitUsage, code, args)
	}
	code, out, _ := runCLI(t, "", nil, "pins", "--help")
	require.Equal(t, exitOK, code)
	for _, sub := range []string{"compute", "check", "sign", "verify", "backup"} {
		require.Contains(t, out, sub)
	}
}

// writeSet writes a set's JSON to a temporary file.
func writeSet(t *testing.T, json string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pins.json")
	require.NoError(t, os.WriteFile(p, []byte(json), 0o600))
	return p
}

func TestPinsCheck(t *testing.T) {
	t.Parallel()
	_, backup, err := pinning.GenerateBackup()
	require.NoError(t, err)
	const host = "attest.example.com"
	rule := func(pins ...string) string {
		return `{"pattern":"` + host + `","pins":["` + strings.Join(pins, `","`) + `"]}`
	}
	withBackup := writeSet(t, `{"version":1,"expires":"2024-05-01T00:00:00Z","after_expiry":"keep-enforcing","rules":[`+rule(appleCAPin, backup.String())+`]}`)
	noBackup := writeSet(t, `{"rules":[`+rule(appleLeafPin, appleCAPin)+`]}`)
	wrong := writeSet(t, `{"rules":[`+rule(userTrustPin, backup.String())+`]}`)
	check := func(pins string, extra ...string) (int, string) {
		code, out, stderr := runCLI(t, "", nil, append([]string{"pins", "check", "--pins", pins, "--chain", appleChainPEM, "--host", host}, extra...)...)
		require.Empty(t, stderr)
		return code, out
	}

	code, out := check(withBackup, "--at", appleChainValidAt)
	require.Equal(t, exitOK, code, out)
	require.Contains(t, out, "PASS: "+appleCAPin+" matches certificate 1 (CN=Apple App Attestation CA 1")
	require.Contains(t, out, "expires at 2024-05-01T00:00:00Z, in less than 30 days")
	require.Contains(t, out, `not valid for "attest.example.com"`, "the App Attest leaf is no TLS certificate")
	require.NotContains(t, out, "no backup pin")

	code, out = check(noBackup, "--at", appleChainValidAt)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "warning: no backup pin outside the chain")

	code, out = check(wrong, "--at", appleChainValidAt)
	require.Equal(t, exitRefused, code)
	require.Contains(t, out, "REFUSED: ")
	require.Contains(t, out, appleLeafPin, "the refusal lists the chain's pins")

	code, out = check(withBackup, "--at", "2024-04-25T00:00:00Z")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "certificate 0 (CN=6d2ac4845f13")
	require.Contains(t, out, "is not valid at 2024-04-25T00:00:00Z")

	code, out, _ = runCLI(t, "", nil, "pins", "check", "--pins", wrong, "--chain", appleChainPEM, "--host", "other.example.com", "--at", appleChainValidAt)
	require.Equal(t, exitRefused, code)
	require.Contains(t, out, "no pin rule covers this host")

	for _, args := range [][]string{
		{"--pins", withBackup, "--chain", appleChainPEM},
		{"--pins", withBackup, "--chain", appleChainPEM, "--host", host, "--at", "yesterday"},
		{"--pins", writeSet(t, `{"rules":[`+rule(appleCAPin)+`]}`), "--chain", appleChainPEM, "--host", host},
		{"--pins", writeSet(t, `eyJhbGciOiJFUzI1NiJ9.e30.sig`), "--chain", appleChainPEM, "--host", host},
		{"--pins", withBackup, "--chain", "missing.pem", "--host", host},
	} {
		code, _, stderr := runCLI(t, "", nil, append([]string{"pins", "check"}, args...)...)
		require.Equal(t, exitUsage, code, args)
		require.NotEmpty(t, stderr)
	}
}

// writeKey writes a private key (PKCS #8) and its public key (PKIX).
func writeKey(t *testing.T, key any, pub any) (keyFile, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyFile = filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	pder, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pubFile = filepath.Join(dir, "pub.pem")
	require.NoError(t, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600))
	return keyFile, pubFile
}

func TestPinsSignVerify(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	edPub, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ecKey, ecPub := writeKey(t, ec, &ec.PublicKey)
	edKey, edPubFile := writeKey(t, ed, edPub)
	set := writeSet(t, `{"version":4,"expires":"2026-06-01T00:00:00Z","after_expiry":"stop-enforcing","rules":[{"pattern":"**.example.com","pins":["`+appleCAPin+`","`+userTrustPin+`"]}]}`)

	for _, k := range [][2]string{{ecKey, ecPub}, {edKey, edPubFile}} {
		code, doc, stderr := runCLI(t, "", nil, "pins", "sign", "--pins", set, "--key", k[0], "--at", "2026-01-01T00:00:00Z")
		require.Equal(t, exitOK, code, stderr)
		docFile := filepath.Join(t.TempDir(), "pins.jws")
		require.NoError(t, os.WriteFile(docFile, []byte(doc), 0o600))

		code, out, stderr := runCLI(t, "", nil, "pins", "verify", "--doc", docFile, "--pubkey", k[1], "--at", "2026-02-01T00:00:00Z")
		require.Equal(t, exitOK, code, stderr)
		require.Contains(t, out, "OK: version 4, issued 2026-01-01T00:00:00Z, expires 2026-06-01T00:00:00Z (after expiry: stop-enforcing)")
		require.Contains(t, out, `"pattern": "**.example.com"`)

		code, out, _ = runCLI(t, "", nil, "pins", "verify", "--doc", docFile, "--pubkey", k[1], "--at", "2026-07-01T00:00:00Z")
		require.Equal(t, exitRefused, code)
		require.Contains(t, out, "REFUSED: moat/pinning: pin-set document has expired")
	}

	// A document verified with the wrong key, or a rotation list.
	code, doc, _ := runCLI(t, "", nil, "pins", "sign", "--pins", set, "--key", ecKey, "--at", "2026-01-01T00:00:00Z")
	require.Equal(t, exitOK, code)
	docFile := filepath.Join(t.TempDir(), "pins.jws")
	require.NoError(t, os.WriteFile(docFile, []byte(doc), 0o600))
	code, out, _ := runCLI(t, "", nil, "pins", "verify", "--doc", docFile, "--pubkey", edPubFile, "--at", "2026-02-01T00:00:00Z")
	require.Equal(t, exitRefused, code)
	require.Contains(t, out, "does not verify")
	code, _, _ = runCLI(t, "", nil, "pins", "verify", "--doc", docFile, "--pubkey", edPubFile, "--pubkey", ecPub, "--at", "2026-02-01T00:00:00Z")
	require.Equal(t, exitOK, code)
	code, _, _ = runCLI(t, "", nil, "pins", "verify", "--doc", docFile, "--pubkey", userTrustPEM)
	require.Equal(t, exitUsage, code, "an RSA key is not a supported publisher key")

	// --out writes the document to a file.
	outFile := filepath.Join(t.TempDir(), "out.jws")
	code, out, _ = runCLI(t, "", nil, "pins", "sign", "--pins", set, "--key", ecKey, "--at", "2026-01-01T00:00:00Z", "--out", outFile)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "signed version 4")
	written, err := os.ReadFile(outFile)
	require.NoError(t, err)
	require.Equal(t, 3, len(strings.Split(strings.TrimSpace(string(written)), ".")))

	unversioned := writeSet(t, `{"rules":[{"pattern":"a.example.com","pins":["`+appleCAPin+`","`+userTrustPin+`"]}]}`)
	for _, args := range [][]string{
		{"sign", "--pins", unversioned, "--key", ecKey, "--at", "2026-01-01T00:00:00Z"},
		{"sign", "--pins", set, "--key", ecPub, "--at", "2026-01-01T00:00:00Z"},
		{"sign", "--pins", set},
		{"sign", "--pins", set, "--key", ecKey, "--at", "2027-01-01T00:00:00Z"},
		{"verify", "--doc", docFile},
		{"verify", "--doc", "missing.jws", "--pubkey", ecPub},
	} {
		code, _, stderr := runCLI(t, "", nil, append([]string{"pins"}, args...)...)
		require.Equal(t, exitUsage, code, args)
		require.NotContains(t, stderr, "-----BEGIN", "no key material in errors")
	}
}

func TestPinsBackup(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "backup.pem")
	code, stdout, stderr := runCLI(t, "", nil, "pins", "backup", "--out", out)
	require.Equal(t, exitOK, code, stderr)
	info, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	key, err := readPrivateKey(out)
	require.NoError(t, err)
	pin, err := pinning.PinOfPublicKey(key.Public())
	require.NoError(t, err)
	require.Equal(t, pin.String()+"\n", stdout)

	code, _, stderr = runCLI(t, "", nil, "pins", "backup", "--out", out)
	require.Equal(t, exitUsage, code, "an existing key is never overwritten")
	require.Contains(t, stderr, "exists")
	code, _, _ = runCLI(t, "", nil, "pins", "backup")
	require.Equal(t, exitUsage, code)
}
