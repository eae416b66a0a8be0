package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/attest"
)

// td is the attest package's copy of the shared test data.
func td(name string) string {
	return filepath.Join("..", "..", "attest", "testdata", filepath.FromSlash(name))
}

// attestCLI runs "moat attest ..." and decodes its JSON answer.
func attestCLI(t *testing.T, args ...string) (int, map[string]any) {
	t.Helper()
	code, stdout, stderr := runCLI(t, "", nil, append([]string{"attest"}, args...)...)
	if code == exitUsage {
		return code, map[string]any{"stderr": stderr}
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), "stdout %q stderr %q", stdout, stderr)
	require.Contains(t, out, "valid")
	require.Contains(t, out, "reason")
	require.Equal(t, code == exitOK, out["valid"])
	return code, out
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// yamlValues reads the top-level scalars and "|" blocks of the document
// of the given type in a veehaitch fixture.
func yamlValues(t *testing.T, file, typ string) map[string]string {
	t.Helper()
	f, err := os.Open(td(file))
	require.NoError(t, err)
	defer f.Close()
	var cur map[string]string
	block := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "---":
			if cur != nil && cur["type"] == typ {
				return cur
			}
			cur, block = map[string]string{}, ""
		case strings.HasPrefix(line, "  "):
			if block != "" {
				cur[block] += strings.TrimPrefix(line, "  ") + "\n"
			}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.Trim(strings.TrimSpace(v), "'")
			block = ""
			if v == "|" {
				block, v = k, ""
			}
			cur[k] = v
		}
	}
	require.Equal(t, typ, cur["type"])
	return cur
}

const (
	sampleApp = "0352187391.com.apple.example_app_attest"
	sampleKey = "bSrEhF8TIzIvWSPwvZ0i2+UOBre4ASH84rK15m6emNY="
	nodeApp   = "V8H6LQ9448.io.uebelacker.AppAttestExample"
	veeApp    = "6MURL8TA57.de.vincent-haupert.apple-appattest-poc"
)

func TestAttestVerifyAppAttestManifest(t *testing.T) {
	t.Parallel()
	rawHash := base64.StdEncoding.EncodeToString([]byte("test_server_challenge"))
	sample := []string{"verify", "--format", "apple-appattest", "--in", td("appattest/apple-doc-sample.attestation.cbor"), "--app-id", sampleApp, "--key-id", sampleKey}
	var node struct{ Attestation, Challenge, KeyID string }
	b, err := os.ReadFile(td("appattest/node-app-attest.attestation-development.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &node))
	nodeIn := writeTemp(t, "node.b64", node.Attestation)
	nodeChallenge, _ := base64.StdEncoding.DecodeString(node.Challenge)
	nodeArgs := []string{"verify", "--format", "apple-appattest", "--in", nodeIn, "--app-id", nodeApp, "--key-id", node.KeyID, "--client-data-text", string(nodeChallenge)}

	type verifyCase struct {
		name   string
		args   []string
		valid  bool
		reason string
		env    string
		pub    string
	}
	cases := []verifyCase{
		{name: "apple sample, raw challenge", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-18T12:00:00Z"), valid: true, env: "production"},
		{name: "apple sample base64 file", args: []string{"verify", "--format", "apple-appattest", "--in", td("appattest/apple-doc-sample.attestation.b64"), "--app-id", sampleApp, "--key-id", sampleKey, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-19T00:00:00Z"}, valid: true, env: "production"},
		{name: "apple sample, explicit root", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-18T12:00:00Z", "--root", td("appattest/Apple_App_Attestation_Root_CA.pem")), valid: true, env: "production"},
		{name: "apple sample, hashed challenge", args: append(sample, "--client-data-text", "test_server_challenge", "--env", "production", "--at", "2024-04-18T12:00:00Z"), reason: "nonce mismatch"},
		{name: "apple sample, expired", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2025-04-18T12:00:00Z"), reason: "not valid at verification time"},
		{name: "apple sample, development", args: append(sample, "--client-data-hash", rawHash, "--env", "development", "--at", "2024-04-18T12:00:00Z"), reason: "environment not accepted"},
		{name: "apple sample, other app", args: []string{"verify", "--format", "apple-appattest", "--in", td("appattest/apple-doc-sample.attestation.cbor"), "--app-id", "0352187391.com.apple.other", "--key-id", sampleKey, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-18T12:00:00Z"}, reason: "app id mismatch"},
		{name: "apple sample, USERTrust root", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-18T12:00:00Z", "--root", td("x509/signal-apns-certificates.pem")), reason: "untrusted root"},
		{name: "apple sample, USERTrust root, expired", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2025-04-18T12:00:00Z", "--root", td("x509/signal-apns-certificates.pem")), reason: "untrusted root"},
		{name: "apple sample, a day after the leaf expired", args: append(sample, "--client-data-hash", rawHash, "--env", "production", "--at", "2024-04-21T00:00:00Z"), reason: "not valid at verification time"},
		{name: "node development", args: append(nodeArgs, "--env", "development", "--at", "2024-02-04T20:27:06Z"), valid: true, env: "development"},
		{name: "node at production verifier", args: append(nodeArgs, "--env", "production", "--at", "2024-02-04T20:27:06Z"), reason: "environment not accepted"},
	}
	for _, f := range []string{"appattest/veehaitch-ios-14.2.yaml", "appattest/veehaitch-ios-14.4.yaml"} {
		d := yamlValues(t, f, "attestation")
		in := writeTemp(t, "att.b64", d["attestationBase64"])
		args := []string{"verify", "--format", "apple-appattest", "--in", in, "--app-id", veeApp, "--key-id", d["keyIdBase64"], "--env", "development", "--at", d["timestamp"]}
		cases = append(cases,
			verifyCase{name: f, args: append(args, "--client-data-text", "wurzelpfropf"), valid: true, env: "development", pub: d["publicKey"]},
			verifyCase{name: f + " hash given", args: append(args, "--client-data-hash", d["clientDataHashSha256Base64"]), valid: true, env: "development", pub: d["publicKey"]},
			verifyCase{name: f + " client data file", args: append(args, "--client-data", writeTemp(t, "cd", "wurzelpfropf")), valid: true, env: "development"},
			verifyCase{name: f + " at a production verifier", args: append(slices.Clone(args[:len(args)-4]), "--env", "production", "--at", d["timestamp"], "--client-data-text", "wurzelpfropf"), reason: "environment not accepted"},
			verifyCase{name: f + " raw challenge", args: append(args, "--client-data-hash", base64.StdEncoding.EncodeToString([]byte("wurzelpfropf"))), reason: "nonce mismatch"},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out := attestCLI(t, c.args...)
			if !c.valid {
				require.Equal(t, exitRefused, code, out)
				require.Contains(t, out["reason"], c.reason)
				require.Equal(t, "invalid_attestation", out["code"])
				return
			}
			require.Equal(t, exitOK, code, out)
			require.Equal(t, float64(0), out["counter"])
			require.Equal(t, c.env, out["environment"])
			require.NotEmpty(t, out["key_id"])
			require.Contains(t, out["public_key"], "BEGIN PUBLIC KEY")
			if c.pub != "" {
				require.Equal(t, c.pub, out["public_key"])
			}
		})
	}
}

func TestAttestAssertManifest(t *testing.T) {
	t.Parallel()
	var node struct {
		AssertionBase64, PublicKeyPem, ClientData string
	}
	b, err := os.ReadFile(td("appattest/node-app-attest.assertion.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &node))
	nodeIn := writeTemp(t, "assertion.b64", node.AssertionBase64)
	raw, _ := base64.StdEncoding.DecodeString(node.AssertionBase64)
	nodeRaw := writeTemp(t, "assertion.cbor", string(raw))
	pubFile := writeTemp(t, "pub.pem", node.PublicKeyPem)
	type assertCase struct {
		name   string
		args   []string
		valid  bool
		reason string
	}
	cases := []assertCase{
		{name: "node", args: []string{"--in", nodeIn, "--public-key", node.PublicKeyPem, "--app-id", nodeApp, "--client-data-text", node.ClientData, "--stored-counter", "0"}, valid: true},
		{name: "node, raw CBOR and key file", args: []string{"--in", nodeRaw, "--public-key", pubFile, "--app-id", nodeApp, "--client-data", writeTemp(t, "cd.json", node.ClientData), "--stored-counter", "0"}, valid: true},
		{name: "node, other client data", args: []string{"--in", nodeIn, "--public-key", node.PublicKeyPem, "--app-id", nodeApp, "--client-data-text", "{}", "--stored-counter", "0"}, reason: "signature does not verify"},
		{name: "node, replayed", args: []string{"--in", nodeIn, "--public-key", node.PublicKeyPem, "--app-id", nodeApp, "--client-data-text", node.ClientData, "--stored-counter", "1"}, reason: "counter not accepted"},
	}
	for _, f := range []string{"appattest/veehaitch-ios-14.2.yaml", "appattest/veehaitch-ios-14.4.yaml"} {
		d := yamlValues(t, f, "assertion")
		in := writeTemp(t, "a.b64", d["assertionBase64"])
		args := []string{"--in", in, "--public-key", d["publicKey"], "--app-id", veeApp, "--client-data-text", "wurzelpfropf"}
		cases = append(cases,
			assertCase{name: f, args: append(args, "--stored-counter", "0"), valid: true},
			assertCase{name: f + " replayed", args: append(args, "--stored-counter", "1"), reason: "counter not accepted"},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out := attestCLI(t, append([]string{"assert", "--format", "apple-appattest"}, c.args...)...)
			if !c.valid {
				require.Equal(t, exitRefused, code, out)
				require.Contains(t, out["reason"], c.reason)
				return
			}
			require.Equal(t, exitOK, code, out)
			require.Equal(t, float64(1), out["counter"])
		})
	}
}

func TestAttestVerifyAndroidKeyManifest(t *testing.T) {
	t.Parallel()
	marlin := td("androidkey/marlin_sdk29_TEE_EC_NONE.pem")
	chainPEM, err := os.ReadFile(marlin)
	require.NoError(t, err)
	certs, err := attest.ParseCertificatesPEM(chainPEM)
	require.NoError(t, err)
	softRoot := writeTemp(t, "soft.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[len(certs)-1].Raw})))
	akitaCerts := readCerts(t, td("androidkey/akita_sdk34_TEE_EC_NONE.pem"))
	revoked := writeTemp(t, "status.json", fmt.Sprintf(`{"entries":{%q:{"status":"REVOKED","reason":"KEY_COMPROMISE"}}}`, akitaCerts[1].SerialNumber.Text(16)))
	notRevoked := writeTemp(t, "status.json", `{"entries":{"2c8cdddfd5e03bfc":{"status":"REVOKED"}}}`)
	// The akita leaf in front of caiman's intermediates: its issuer is
	// not the next certificate's subject.
	var mixedPEM []byte
	for _, c := range append(akitaCerts[:1:1], readCerts(t, td("androidkey/caiman_sdk36_TEE_EC_RKP.pem"))[1:]...) {
		mixedPEM = append(mixedPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	mixed := writeTemp(t, "mixed.pem", string(mixedPEM))

	type want struct {
		level, boot, pkg string
		locked           bool
		version          float64
		challenge        string
	}
	collector := "com.google.wireless.android.security.attestationverifier.collector"
	cases := []struct {
		name   string
		args   []string
		want   *want
		reason string
	}{
		{name: "akita", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge"},
			want: &want{level: "tee", boot: "UNVERIFIED", pkg: collector, version: 300, challenge: "challenge"}},
		{name: "akita with package, revocations and JSON roots", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge", base64.StdEncoding.EncodeToString([]byte("challenge")), "--package", collector, "--revocations", notRevoked, "--roots", td("androidkey/google-roots.json")},
			want: &want{level: "tee", boot: "UNVERIFIED", pkg: collector, version: 300, challenge: "challenge"}},
		{name: "akita, verified boot required", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge", "--require-verified-boot"}, reason: "root of trust"},
		{name: "akita, revoked intermediate", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge", "--revocations", revoked}, reason: "revoked"},
		{name: "akita, other challenge", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "other"}, reason: "challenge mismatch"},
		{name: "akita, other package", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge", "--package", "com.evil"}, reason: "package not accepted"},
		{name: "akita, expired intermediate", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-10-09T00:00:00Z", "--challenge-text", "challenge"}, reason: "not valid at verification time"},
		{name: "akita, only the 2025 EC root", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge", "--roots", td("androidkey/google-root-ec-p384-2025.pem")}, reason: "untrusted root"},
		{name: "blueline strongbox", args: []string{"--in", td("androidkey/blueline_sdk28_SB_RSA_NONE.pem"), "--at", "2020-08-29T08:21:14.215Z", "--challenge-text", "challenge", "--min-level", "strongbox"},
			want: &want{level: "strongbox", boot: "UNVERIFIED", pkg: collector, version: 3, challenge: "challenge"}},
		{name: "akita below strongbox", args: []string{"--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-09-26T22:31:25.586Z", "--challenge-text", "challenge", "--min-level", "strongbox"}, reason: "security level too low"},
		{name: "caiman, good production device", args: []string{"--in", td("androidkey/caiman_sdk36_TEE_EC_RKP.pem"), "--at", "2025-09-26T15:31:20.964Z", "--challenge-text", "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", "--package", "com.google.android.attestation", "--require-verified-boot"},
			want: &want{level: "tee", boot: "VERIFIED", locked: true, pkg: "com.google.android.attestation", version: 400, challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4"}},
		{name: "marlin, software root", args: []string{"--in", marlin, "--at", "2019-10-29T00:21:52Z", "--challenge-text", "challenge"}, reason: "untrusted root"},
		{name: "marlin, software root trusted but TEE minimum", args: []string{"--in", marlin, "--at", "2019-10-29T00:21:52Z", "--challenge-text", "challenge", "--roots", softRoot}, reason: "security level too low"},
		{name: "marlin, software accepted", args: []string{"--in", marlin, "--at", "2019-10-29T00:21:52Z", "--challenge-text", "challenge", "--roots", softRoot, "--min-level", "software"},
			want: &want{level: "software", pkg: collector, version: 2, challenge: "challenge"}},
		{name: "tags not in ascending order", args: []string{"--in", td("androidkey/invalid_tags_not_in_ascending_order.pem"), "--at", "2027-09-16T00:00:00Z", "--challenge-text", "challenge"}, reason: "does not verify"},
		{name: "old EC TEE chain", args: []string{"--in", td("androidkey/google-android-key-attestation_EC_TEE_chain.pem"), "--at", "2018-07-29T12:44:17Z", "--challenge-text", "abc"},
			want: &want{level: "tee", boot: "UNVERIFIED", pkg: "android", version: 3, challenge: "abc"}},
		{name: "old EC TEE chain, its 2016 root", args: []string{"--in", td("androidkey/google-android-key-attestation_EC_TEE_chain.pem"), "--at", "2018-07-29T12:44:17Z", "--challenge-text", "abc", "--roots", td("androidkey/google-root-rsa-2016.pem")},
			want: &want{level: "tee", boot: "UNVERIFIED", pkg: "android", version: 3, challenge: "abc"}},
		{name: "leaf issuer does not match", args: []string{"--in", mixed, "--at", "2025-09-26T15:31:20.964Z", "--challenge-text", "challenge"}, reason: "issuer"},
		{name: "old EC TEE chain, verified boot required", args: []string{"--in", td("androidkey/google-android-key-attestation_EC_TEE_chain.pem"), "--at", "2018-07-29T12:44:17Z", "--challenge-text", "abc", "--require-verified-boot"}, reason: "root of trust"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out := attestCLI(t, append([]string{"verify", "--format", "android-key"}, c.args...)...)
			if c.want == nil {
				require.Equal(t, exitRefused, code, out)
				require.Contains(t, out["reason"], c.reason)
				return
			}
			require.Equal(t, exitOK, code, out)
			require.Equal(t, c.want.level, out["security_level"])
			require.Equal(t, base64.StdEncoding.EncodeToString([]byte(c.want.challenge)), out["challenge"])
			require.Contains(t, out["package"], c.want.pkg)
			require.Equal(t, c.want.version, out["attestation_version"])
			if c.want.level != "software" {
				require.Equal(t, c.want.boot, out["verified_boot_state"])
				require.Equal(t, c.want.locked, out["device_locked"])
			}
		})
	}
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	c, err := attest.ParseCertificatesPEM(b)
	require.NoError(t, err)
	return c
}

func TestAttestVerifyPlayIntegrity(t *testing.T) {
	t.Parallel()
	dec := make([]byte, 32)
	_, err := rand.Read(dec)
	require.NoError(t, err)
	sig, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&sig.PublicKey)
	require.NoError(t, err)
	verPEM := writeTemp(t, "ver.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	binding := sha256.Sum256([]byte("request"))
	digest := sha256.Sum256([]byte("cert"))
	payload, err := json.Marshal(map[string]any{
		"requestDetails":  map[string]any{"requestPackageName": "com.example.travel", "timestampMillis": strconv.FormatInt(at.UnixMilli(), 10), "requestHash": base64.RawURLEncoding.EncodeToString(binding[:])},
		"appIntegrity":    map[string]any{"appRecognitionVerdict": "PLAY_RECOGNIZED", "packageName": "com.example.travel", "certificateSha256Digest": []string{base64.RawURLEncoding.EncodeToString(digest[:])}, "versionCode": "7"},
		"deviceIntegrity": map[string]any{"deviceRecognitionVerdict": []string{"MEETS_DEVICE_INTEGRITY"}},
	})
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: sig}, nil)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	inner, err := jws.CompactSerialize()
	require.NoError(t, err)
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: dec}, nil)
	require.NoError(t, err)
	jwe, err := enc.Encrypt([]byte(inner))
	require.NoError(t, err)
	tok, err := jwe.CompactSerialize()
	require.NoError(t, err)
	in := writeTemp(t, "token", tok+"\n")
	base := []string{"verify", "--format", "play-integrity", "--in", in, "--decryption-key", base64.StdEncoding.EncodeToString(dec), "--verification-key", verPEM}
	rh := base64.StdEncoding.EncodeToString(binding[:])

	code, out := attestCLI(t, append(base, "--package", "com.example.travel", "--request-hash", rh, "--at", at.Format(time.RFC3339))...)
	require.Equal(t, exitOK, code, out)
	require.Equal(t, float64(7), out["version_code"])
	require.Equal(t, "PLAY_RECOGNIZED", out["app_recognition"])
	require.Equal(t, false, out["certificate_digest_checked"])

	code, out = attestCLI(t, append(base, "--package", "com.example.travel", "--request-hash", rh, "--at", at.Format(time.RFC3339), "--cert-digest", base64.StdEncoding.EncodeToString(digest[:]))...)
	require.Equal(t, exitOK, code, out)
	require.Equal(t, true, out["certificate_digest_checked"])

	for name, c := range map[string]struct {
		args   []string
		reason string
	}{
		"wrong package":          {[]string{"--package", "com.evil", "--request-hash", rh, "--at", at.Format(time.RFC3339)}, "package not accepted"},
		"stale":                  {[]string{"--package", "com.example.travel", "--request-hash", rh, "--at", at.Add(time.Hour).Format(time.RFC3339)}, "too old"},
		"other request hash":     {[]string{"--package", "com.example.travel", "--request-hash", "AAAA", "--at", at.Format(time.RFC3339)}, "challenge mismatch"},
		"nonce, not hash":        {[]string{"--package", "com.example.travel", "--nonce", rh, "--at", at.Format(time.RFC3339)}, "challenge mismatch"},
		"other cert":             {[]string{"--package", "com.example.travel", "--request-hash", rh, "--at", at.Format(time.RFC3339), "--cert-digest", rh}, "package not accepted"},
		"other verification key": {[]string{"--package", "com.example.travel", "--request-hash", rh, "--at", at.Format(time.RFC3339), "--verification-key", otherKeyPEM(t)}, "signature"},
	} {
		code, out := attestCLI(t, append(base, c.args...)...)
		require.Equal(t, exitRefused, code, name)
		require.Contains(t, out["reason"], c.reason, name)
	}
}

func otherKeyPEM(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestAttestVerifyWebAuthnManifest(t *testing.T) {
	t.Parallel()
	roots := []string{"--roots", td("webauthn/apple-webauthn-root-ca.pem"), "--roots", td("webauthn/google-hardware-attestation-root-2019.pem")}
	cases := []struct {
		file, at string
		extra    []string
		trusted  bool
		reason   string
	}{
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z"},
		{file: "apple-passkey.json", at: "2021-09-01T00:00:00Z", extra: []string{"--require-trusted"}, trusted: true},
		{file: "android-key-pixel8a.json", at: "2025-01-08T00:00:00Z", extra: []string{"--require-trusted"}, trusted: true},
		{file: "tpm-surface-pro-4.json", at: "2022-01-01T00:00:00Z", extra: []string{"--insecure-allow-sha1"}},
		{file: "fido-u2f-yubikey-firefox.json", at: "2022-01-01T00:00:00Z"},
		{file: "tpm-surface-pro-4.json", at: "2022-01-01T00:00:00Z", reason: "algorithm not accepted"},
		{file: "apple-passkey.json", at: "2021-09-04T00:00:00Z", reason: "not valid at verification time"},
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z", extra: []string{"--require-trusted"}, reason: "untrusted root"},
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z", extra: []string{"--origin", "http://localhost:5001"}, reason: "WebAuthn registration not accepted"},
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z", extra: []string{"--rp-id", "example.com"}, reason: "app id mismatch"},
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z", extra: []string{"--challenge", "AAAA"}, reason: "challenge mismatch"},
	}
	for _, c := range cases {
		t.Run(c.file+" "+strings.Join(c.extra, " ")+" "+c.reason, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(td("webauthn/" + c.file))
			require.NoError(t, err)
			var m struct {
				Challenge string `json:"expected_challenge_b64url"`
				Origin    string `json:"expected_origin"`
				RPID      string `json:"expected_rp_id"`
				Expected  struct {
					Fmt       string  `json:"fmt"`
					SignCount float64 `json:"sign_count"`
					AAGUID    string  `json:"aaguid_hex"`
					CredID    string  `json:"credential_id_b64url"`
				} `json:"expected"`
			}
			require.NoError(t, json.Unmarshal(b, &m))
			args := []string{"verify", "--format", "webauthn", "--in", td("webauthn/" + c.file), "--at", c.at, "--challenge", m.Challenge, "--origin", m.Origin, "--rp-id", m.RPID}
			args = append(append(args, roots...), c.extra...)
			code, out := attestCLI(t, args...)
			if c.reason != "" {
				require.Equal(t, exitRefused, code, out)
				require.Contains(t, out["reason"], c.reason)
				return
			}
			require.Equal(t, exitOK, code, out)
			require.Equal(t, m.Expected.Fmt, out["fmt"])
			require.Equal(t, m.Expected.SignCount, out["sign_count"])
			require.Equal(t, m.Expected.AAGUID, out["aaguid"])
			require.Equal(t, m.Expected.CredID, out["credential_id"])
			require.Equal(t, c.trusted, out["trusted"])
		})
	}
}

func TestAttestUsage(t *testing.T) {
	t.Parallel()
	sample := td("appattest/apple-doc-sample.attestation.cbor")
	for name, args := range map[string][]string{
		"no subcommand":    {},
		"unknown verb":     {"frob"},
		"no format":        {"verify", "--in", sample, "--at", "2024-04-18T12:00:00Z"},
		"unknown format":   {"verify", "--format", "x", "--in", sample},
		"flag of another":  {"verify", "--format", "android-key", "--in", sample, "--at", "2024-04-18T12:00:00Z", "--env", "production", "--challenge-text", "x"},
		"two client datas": {"verify", "--format", "apple-appattest", "--in", sample, "--at", "2024-04-18T12:00:00Z", "--app-id", sampleApp, "--key-id", sampleKey, "--env", "production", "--client-data-text", "a", "--client-data-hash", "YQ=="},
		"no client data":   {"verify", "--format", "apple-appattest", "--in", sample, "--at", "2024-04-18T12:00:00Z", "--app-id", sampleApp, "--key-id", sampleKey, "--env", "production"},
		"bad env":          {"verify", "--format", "apple-appattest", "--in", sample, "--at", "2024-04-18T12:00:00Z", "--app-id", sampleApp, "--key-id", sampleKey, "--env", "staging", "--client-data-text", "a"},
		"bad time":         {"verify", "--format", "apple-appattest", "--in", sample, "--at", "yesterday", "--app-id", sampleApp, "--key-id", sampleKey, "--env", "production", "--client-data-text", "a"},
		"missing file":     {"verify", "--format", "apple-appattest", "--in", "/nonexistent", "--at", "2024-04-18T12:00:00Z", "--app-id", sampleApp, "--key-id", sampleKey, "--env", "production", "--client-data-text", "a"},
		"bad min level":    {"verify", "--format", "android-key", "--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-04-18T12:00:00Z", "--challenge-text", "x", "--min-level", "titanium"},
		"no challenge":     {"verify", "--format", "android-key", "--in", td("androidkey/akita_sdk34_TEE_EC_NONE.pem"), "--at", "2024-04-18T12:00:00Z"},
		"assert bad count": {"assert", "--format", "apple-appattest", "--in", sample, "--public-key", "x", "--app-id", sampleApp, "--client-data-text", "a", "--stored-counter", "-1"},
		"assert no format": {"assert", "--in", sample, "--public-key", "x", "--app-id", sampleApp, "--client-data-text", "a", "--stored-counter", "0"},
		"positional":       {"verify", "extra"},
	} {
		code, out := attestCLI(t, args...)
		require.Equal(t, exitUsage, code, "%s: %v", name, out)
	}
	code, stdout, _ := runCLI(t, "", nil, "attest", "verify", "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "apple-appattest")
}
