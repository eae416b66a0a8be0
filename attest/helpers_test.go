package attest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"
)

// testTime is the instant the synthetic chains are valid at.
var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	require.NoError(t, err)
	return b
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return tm
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := decodeB64(s)
	require.NoError(t, err)
	return b
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func fixedNow(tm time.Time) func() time.Time { return func() time.Time { return tm } }

// yamlDocs reads the flat multi-document YAML of the veehaitch fixtures:
// top-level "key: value" pairs and "key: |" blocks; nested maps are skipped.
func yamlDocs(t testing.TB, name string) []map[string]string {
	t.Helper()
	var docs []map[string]string
	var cur map[string]string
	block := ""
	sc := bufio.NewScanner(strings.NewReader(string(readTestdata(t, name))))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "---":
			cur = map[string]string{}
			docs = append(docs, cur)
			block = ""
		case strings.HasPrefix(line, "  "):
			if block != "" {
				cur[block] += strings.TrimPrefix(line, "  ") + "\n"
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.Trim(strings.TrimSpace(v), "'")
			block = ""
			if v == "|" {
				block, v = k, ""
			}
			cur[k] = v
		}
	}
	require.NoError(t, sc.Err())
	return docs
}

func yamlDoc(t testing.TB, name, typ string) map[string]string {
	t.Helper()
	for _, d := range yamlDocs(t, name) {
		if d["type"] == typ {
			return d
		}
	}
	t.Fatalf("%s: no %s document", name, typ)
	return nil
}

// fakeCA is a synthetic App Attest CA, to exercise checks that real
// vectors cannot (aaguid padding, counters, credential ids).
type fakeCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func makeCert(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func newFakeCA(t testing.TB) *fakeCA {
	t.Helper()
	ca := &fakeCA{rootKey: newKey(t), interKey: newKey(t)}
	ca.root = makeCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fake Root"},
		NotBefore: testTime.AddDate(-1, 0, 0), NotAfter: testTime.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, &ca.rootKey.PublicKey, ca.rootKey)
	ca.inter = makeCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Fake Intermediate"},
		NotBefore: testTime.AddDate(-1, 0, 0), NotAfter: testTime.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, ca.root, &ca.interKey.PublicKey, ca.rootKey)
	return ca
}

type fakeAttestation struct {
	appID          string
	aaguid         []byte
	counter        uint32
	clientDataHash []byte
	credID         []byte // nil: the key id
	notAfter       time.Time
}

func coseKey(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	pt, err := pub.Bytes()
	require.NoError(t, err)
	b, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:]})
	require.NoError(t, err)
	return b
}

// appAttest returns key id, attestation object and the attested key.
func (ca *fakeCA) appAttest(t testing.TB, f fakeAttestation) ([]byte, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	pt, err := key.PublicKey.Bytes()
	require.NoError(t, err)
	keyID := sha(pt)
	cred := f.credID
	if cred == nil {
		cred = keyID
	}
	ad := append([]byte{}, sha([]byte(f.appID))...)
	ad = append(ad, flagAT)
	ad = binary.BigEndian.AppendUint32(ad, f.counter)
	ad = append(ad, f.aaguid...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(cred)))
	ad = append(ad, cred...)
	ad = append(ad, coseKey(t, &key.PublicKey)...)
	nonce := sha(append(append([]byte{}, ad...), f.clientDataHash...))
	ext, err := asn1.Marshal(struct {
		Nonce []byte `asn1:"explicit,tag:1"`
	}{nonce})
	require.NoError(t, err)
	notAfter := f.notAfter
	if notAfter.IsZero() {
		notAfter = testTime.AddDate(0, 0, 3)
	}
	leaf := makeCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "fake credential"},
		NotBefore: testTime.AddDate(0, 0, -1), NotAfter: notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidAppleNonce, Value: ext}},
	}, ca.inter, &key.PublicKey, ca.interKey)
	obj, err := cbor.Marshal(map[string]any{
		"fmt":      FormatAppleAppAttest,
		"attStmt":  map[string]any{"x5c": [][]byte{leaf.Raw, ca.inter.Raw}, "receipt": []byte("fake receipt")},
		"authData": ad,
	})
	require.NoError(t, err)
	return keyID, obj, key
}

// assertion returns an App Attest assertion by key.
func fakeAssertion(t testing.TB, key *ecdsa.PrivateKey, appID string, counter uint32, clientDataHash []byte) []byte {
	t.Helper()
	ad := append([]byte{}, sha([]byte(appID))...)
	ad = append(ad, 0)
	ad = binary.BigEndian.AppendUint32(ad, counter)
	digest := sha(sha(append(append([]byte{}, ad...), clientDataHash...)))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
	require.NoError(t, err)
	b, err := cbor.Marshal(map[string]any{"signature": sig, "authenticatorData": ad})
	require.NoError(t, err)
	return b
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
