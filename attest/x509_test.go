package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestX509Manifest runs the x509 manifest: the App Attest sample chain
// validates at 2024-04-18T12:00:00Z and not at 2024-04-21, its SPKI pins
// are the manifest's, and the USERTrust root (the "wrong pin") does not
// anchor it.
func TestX509Manifest(t *testing.T) {
	t.Parallel()
	chain := readChain(t, "x509/apple-doc-sample-appattest-chain.pem")
	require.Len(t, chain, 3)
	pins := []string{
		"AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=",
		"YIGkqT2GtRADhRxA6OtxL+ujui99faxmyzx0cbJGZRo=",
		"GudR/SmJbQ8fE/4ibAY/RF1A2JOKzGJFwlHswGeTML0=",
	}
	for i, c := range chain {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		require.Equal(t, pins[i], base64.StdEncoding.EncodeToString(sum[:]), "certificate %d", i)
	}
	require.Equal(t, AppleAppAttestationRoot().Raw, chain[2].Raw)

	// The same chain is the x5c of Apple's sample attestation.
	ao, err := parseAttestationObject(readTestdata(t, "appattest/apple-doc-sample.attestation.cbor"))
	require.NoError(t, err)
	var st appAttestStmt
	require.NoError(t, cborDec.Unmarshal(ao.AttStmt, &st))
	require.Equal(t, chain[0].Raw, st.X5C[0])
	require.Equal(t, chain[1].Raw, st.X5C[1])

	usertrust := readChain(t, "x509/signal-apns-certificates.pem")
	require.Len(t, usertrust, 1)
	sum := sha256.Sum256(usertrust[0].RawSubjectPublicKeyInfo)
	require.Equal(t, "x4QzPSC810K5/cMjb05Qm4k3Bw5zBn4lTdO/nEW/Td4=", base64.StdEncoding.EncodeToString(sum[:]))

	apple := x509.NewCertPool()
	apple.AddCert(chain[2])
	wrong := x509.NewCertPool()
	wrong.AddCert(usertrust[0])
	x5c := [][]byte{chain[0].Raw, chain[1].Raw}
	_, err = verifyX5C(x5c, apple, mustTime(t, "2024-04-18T12:00:00Z"))
	require.NoError(t, err)
	_, err = verifyX5C(x5c, apple, mustTime(t, "2024-04-21T00:00:00Z"))
	require.ErrorIs(t, err, ErrCertificateExpired)
	_, err = verifyX5C(x5c, wrong, mustTime(t, "2024-04-18T12:00:00Z"))
	require.ErrorIs(t, err, ErrUnknownRoot)
	// Link by link, the same answers.
	require.NoError(t, verifyLinks(chain))
	require.NoError(t, checkValidity(chain, mustTime(t, "2024-04-18T12:00:00Z")))
	require.ErrorIs(t, checkValidity(chain, mustTime(t, "2024-04-21T00:00:00Z")), ErrCertificateExpired)
	require.ErrorIs(t, anchorChain(chain[1], usertrust, mustTime(t, "2024-04-18T12:00:00Z")), ErrUnknownRoot)
	require.NoError(t, anchorChain(chain[1], chain[2:], mustTime(t, "2024-04-18T12:00:00Z")))
}

func TestParseCertificatesPEM(t *testing.T) {
	t.Parallel()
	// The joined bundle without newlines between certificates.
	c, err := ParseCertificatesPEM(readTestdata(t, "androidkey/google-android-key-attestation_EC_TEE_chain.pem"))
	require.NoError(t, err)
	require.Len(t, c, 4)
	for _, bad := range []string{"", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		_, err := ParseCertificatesPEM([]byte(bad))
		require.Error(t, err, bad)
	}
	_, err = ParseCertificatesPEM(append(readTestdata(t, "x509/signal-apns-certificates.pem"), "trailing"...))
	require.Error(t, err)
	_, err = ParseRootsJSON([]byte(`[]`))
	require.Error(t, err)
	_, err = ParseRootsJSON([]byte(`{`))
	require.Error(t, err)
}
