package attest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz targets for every parser of untrusted input. Seeds are the real
// vectors of testdata plus malformed cases; findings are kept under
// testdata/fuzz. None may panic; all must return an error or a result.

func FuzzAppAttestAttestation(f *testing.F) {
	sample := readTestdata(f, "appattest/apple-doc-sample.attestation.cbor")
	f.Add(sample)
	f.Add(sample[:len(sample)/2])
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa3, 0x63, 'f', 'm', 't'})
	var node struct{ Attestation string }
	_ = json.Unmarshal(readTestdata(f, "appattest/node-app-attest.attestation-development.json"), &node)
	f.Add(mustB64(f, node.Attestation))
	for _, y := range []string{"appattest/veehaitch-ios-14.2.yaml", "appattest/veehaitch-ios-14.4.yaml"} {
		f.Add(mustB64(f, yamlDoc(f, y, "attestation")["attestationBase64"]))
	}
	// Chain verification is left out: P-384 signature checks under
	// coverage instrumentation take seconds per input. The parsers and
	// the checks after the chain are what take untrusted bytes.
	f.Fuzz(func(t *testing.T, obj []byte) {
		st, ad, err := parseAppAttestObject(obj)
		if err != nil {
			return
		}
		for _, der := range st.X5C {
			_, _ = x509.ParseCertificate(der)
		}
		if c, err := x509.ParseCertificate(st.X5C[0]); err == nil {
			_ = checkAppleNonce(c, ad.raw, []byte("test_server_challenge"))
		}
	})
}

func FuzzAppAttestAssertion(f *testing.F) {
	var node struct{ AssertionBase64, PublicKeyPem string }
	_ = json.Unmarshal(readTestdata(f, "appattest/node-app-attest.assertion.json"), &node)
	a := mustB64(f, node.AssertionBase64)
	f.Add(a)
	f.Add(a[:len(a)-5])
	f.Add([]byte{0xa2})
	for _, y := range []string{"appattest/veehaitch-ios-14.2.yaml", "appattest/veehaitch-ios-14.4.yaml"} {
		f.Add(mustB64(f, yamlDoc(f, y, "assertion")["assertionBase64"]))
	}
	pub := parsePublicKeyPEM(f, node.PublicKeyPem)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseAppAttestAssertion(b)
		_, _ = VerifyAppAttestAssertion(b, pub, nodeAppID, sha([]byte("{}")), 0)
	})
}

func FuzzKeyDescription(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "androidkey", "*.pem"))
	for _, p := range files {
		chain, err := ParseCertificatesPEM(readTestdata(f, filepath.ToSlash(filepath.Join("androidkey", filepath.Base(p)))))
		if err != nil {
			continue
		}
		for _, e := range chain[0].Extensions {
			if e.Id.Equal(oidKeyDescription) {
				f.Add(e.Value)
				f.Add(e.Value[:len(e.Value)/2])
			}
		}
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		kd, err := ParseKeyDescription(b)
		if err == nil {
			_ = kd.Packages()
			_ = CheckKeyDescription(kd, KeyDescriptionPolicy{Challenge: []byte("challenge"), Package: "p"})
		}
	})
}

func FuzzWebAuthnRegistration(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "webauthn", "*.json"))
	for _, p := range files {
		c := loadWebAuthnCase(f, filepath.Base(p))
		ch, _ := decodeB64(c.Challenge)
		f.Add([]byte(c.Credential), ch, c.Origin, c.RPID)
	}
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`), []byte("x"), "o", "r")
	f.Fuzz(func(t *testing.T, b, challenge []byte, origin, rpID string) {
		if len(challenge) == 0 || origin == "" || rpID == "" {
			return
		}
		_, _ = VerifyWebAuthnRegistration(b, WebAuthnOptions{
			Challenge: challenge, Origin: origin, RPID: rpID,
			At: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), InsecureAllowSHA1: true,
		})
	})
}

func FuzzWebAuthnStatement(f *testing.F) {
	// Statement parsers behind the client-data checks: COSE keys, TPM
	// structures, CBOR statements, fed directly.
	for _, name := range []string{"packed-yubikey-firefox.json", "tpm-surface-pro-4.json", "android-key-pixel8a.json", "apple-passkey.json", "fido-u2f-yubikey-firefox.json"} {
		c := loadWebAuthnCase(f, name)
		var cred webAuthnCredential
		_ = json.Unmarshal(c.Credential, &cred)
		aob, _ := decodeB64(cred.Response.AttestationObject)
		f.Add(aob)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ao, err := parseAttestationObject(b)
		if err != nil {
			return
		}
		ad, err := parseAuthenticatorData(ao.AuthData)
		if err != nil || ad.credentialKey == nil {
			return
		}
		pub, alg, err := parseCOSEKey(ad.credentialKey)
		if err != nil {
			return
		}
		var fl stmtFields
		if cborDec.Unmarshal(ao.AttStmt, &fl) == nil {
			_, _ = parseTPMPublic(fl.PubArea)
			_, _ = parseTPMAttest(fl.CertInfo)
		}
		st := &webAuthnStatement{ad: ad, cdh: make([]byte, 32), pub: pub, alg: alg,
			opts: &WebAuthnOptions{At: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), InsecureAllowSHA1: true}}
		_ = st.verify(ao.Fmt, ao.AttStmt)
	})
}

func FuzzPolicyWire(f *testing.F) {
	key := newKey(f)
	ev, _ := InsecureDevelopmentEvidence(key, "n")
	f.Add([]byte(ev))
	f.Add([]byte(`{"format":"apple-appattest","key_id":"AA==","attestation":"oA=="}`))
	f.Add([]byte(`{"format":"android-key","chain":["AA=="]}`))
	f.Add([]byte(`{"format":"play-integrity","token":"a.b.c.d.e"}`))
	jkt, _ := thumbprint(&key.PublicKey)
	insecure := mustInsecure(f)
	android, _ := NewAndroidKey(AndroidKeyConfig{Roots: GoogleAttestationRoots(), Packages: []AndroidPackage{{Name: "a", SignatureDigests: [][]byte{make([]byte, 32)}}}, Revocations: emptyRevocations(f)})
	pk := newPlayKeys(f)
	play := newPlayIntegrity(f, pk, testTime, nil)
	apple, _ := NewAppAttest(AppAttestConfig{AppIDs: []string{appleSampleAppID}, Roots: []*x509.Certificate{AppleAppAttestationRoot()}, Environments: []Environment{Production}, Keys: NewMemoryKeyStore()})
	p, err := NewPolicy(PolicyConfig{Rules: []Rule{{Verifiers: []Verifier{insecure, android, play, apple}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := p.Verify(context.Background(), Registration{AppID: "a", Platform: "x", Nonce: "n", KeyThumbprint: jkt, Attestation: b})
		if (res == nil) == (err == nil) {
			t.Fatalf("result %v and error %v", res, err)
		}
	})
}
