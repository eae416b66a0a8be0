package attest

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

//go:embed roots/apple-app-attestation-root-ca.pem
var appleAppAttestRootPEM []byte

//go:embed roots/google-roots.json
var googleRootsJSON []byte

// AppleAppAttestationRoot returns Apple's App Attestation Root CA (P-384,
// valid 2020-03-18 to 2045-03-15), embedded in this package. Each call
// returns a new copy.
func AppleAppAttestationRoot() *x509.Certificate {
	certs, err := ParseCertificatesPEM(appleAppAttestRootPEM)
	if err != nil || len(certs) != 1 {
		panic("moat/attest: embedded Apple root does not parse")
	}
	return certs[0]
}

// GoogleAttestationRoots returns Google's hardware key attestation roots,
// embedded in this package: the RSA-4096 root (whose key also signed its
// 2016 and 2019 issues, so chains ending at those match it) and the EC
// P-384 "Key Attestation CA1" root of 2025. Android chains are matched to
// roots by public key. Each call returns new copies.
func GoogleAttestationRoots() []*x509.Certificate {
	certs, err := ParseRootsJSON(googleRootsJSON)
	if err != nil {
		panic("moat/attest: embedded Google roots do not parse")
	}
	return certs
}

// ParseRootsJSON parses a JSON array of PEM certificates, the format
// Google publishes its attestation roots in.
func ParseRootsJSON(data []byte) ([]*x509.Certificate, error) {
	var pems []string
	if err := json.Unmarshal(data, &pems); err != nil {
		return nil, fmt.Errorf("moat/attest: roots JSON: %w", err)
	}
	var out []*x509.Certificate
	for i, p := range pems {
		cs, err := ParseCertificatesPEM([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("moat/attest: roots JSON entry %d: %w", i, err)
		}
		out = append(out, cs...)
	}
	if len(out) == 0 {
		return nil, errors.New("moat/attest: roots JSON holds no certificate")
	}
	return out, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of a PEM bundle, in
// order. It also reads bundles made by joining files that lack a final
// newline ("-----END CERTIFICATE----------BEGIN CERTIFICATE-----"). It
// fails on a bundle with no certificate or with text that is not PEM.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	data = bytes.ReplaceAll(data, []byte("-----END CERTIFICATE-----"), []byte("-----END CERTIFICATE-----\n"))
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("moat/attest: certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) != 0 {
		return nil, errors.New("moat/attest: text after the last PEM block")
	}
	if len(out) == 0 {
		return nil, errors.New("moat/attest: no PEM certificate")
	}
	return out, nil
}
