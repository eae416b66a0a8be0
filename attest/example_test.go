package attest_test

import (
	"context"
	"crypto"
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
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/attest"
)

// The app computes the same 32 bytes from the server nonce and its key's
// thumbprint, and hands them to the platform's attestation API.
func ExampleChallenge() {
	ch, err := attest.Challenge("q1w2e3r4t5y6u7i8o9p0", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
	if err != nil {
		panic(err)
	}
	fmt.Println(len(ch), base64.RawURLEncoding.EncodeToString(ch))
	// Output: 32 6b8OAE-rz6YyW0dw6SlIbAgUzwTq_v_AThP4DTLlEo4
}

// Verifying Apple's documented sample attestation, whose clientDataHash is
// the raw challenge text.
func ExampleAppAttest_VerifyAttestation() {
	obj, err := os.ReadFile("testdata/appattest/apple-doc-sample.attestation.cbor")
	if err != nil {
		panic(err)
	}
	v, err := attest.NewAppAttest(attest.AppAttestConfig{
		AppIDs:       []string{"0352187391.com.apple.example_app_attest"},
		Roots:        []*x509.Certificate{attest.AppleAppAttestationRoot()},
		Environments: []attest.Environment{attest.Production},
		Keys:         attest.NewMemoryKeyStore(),
		Now:          func() time.Time { return time.Date(2024, 4, 18, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	keyID, _ := base64.StdEncoding.DecodeString("bSrEhF8TIzIvWSPwvZ0i2+UOBre4ASH84rK15m6emNY=")
	res, err := v.VerifyAttestation(keyID, obj, []byte("test_server_challenge"))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.AppID, res.Environment, res.Counter)

	// Hashing the challenge gives another clientDataHash: refused.
	sum := sha256.Sum256([]byte("test_server_challenge"))
	_, err = v.VerifyAttestation(keyID, obj, sum[:])
	fmt.Println(err.(*attest.Error).Code, err.(*attest.Error).Description())
	// Output:
	// 0352187391.com.apple.example_app_attest production 0
	// invalid_attestation nonce mismatch
}

// Verifying an App Attest assertion against the stored counter.
func ExampleVerifyAppAttestAssertion() {
	var fx struct{ AssertionBase64, PublicKeyPem, ClientData string }
	b, _ := os.ReadFile("testdata/appattest/node-app-attest.assertion.json")
	if err := json.Unmarshal(b, &fx); err != nil {
		panic(err)
	}
	blk, _ := pem.Decode([]byte(fx.PublicKeyPem))
	pub, _ := x509.ParsePKIXPublicKey(blk.Bytes)
	assertion, _ := base64.StdEncoding.DecodeString(fx.AssertionBase64)
	cdh := sha256.Sum256([]byte(fx.ClientData))
	counter, err := attest.VerifyAppAttestAssertion(assertion, pub.(*ecdsa.PublicKey), "V8H6LQ9448.io.uebelacker.AppAttestExample", cdh[:], 0)
	fmt.Println(counter, err)
	_, err = attest.VerifyAppAttestAssertion(assertion, pub.(*ecdsa.PublicKey), "V8H6LQ9448.io.uebelacker.AppAttestExample", cdh[:], counter)
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// moat/attest: counter not accepted: assertion counter 1 not above stored 1 (replay)
}

// Checking an Android key attestation chain and reading its facts.
func ExampleVerifyAndroidKeyChain() {
	pemChain, _ := os.ReadFile("testdata/androidkey/caiman_sdk36_TEE_EC_RKP.pem")
	chain, err := attest.ParseCertificatesPEM(pemChain)
	if err != nil {
		panic(err)
	}
	revocations, _ := attest.ParseRevocationList([]byte(`{"entries":{}}`))
	at := time.Date(2025, 9, 26, 15, 31, 20, 0, time.UTC)
	kd, err := attest.VerifyAndroidKeyChain(chain, attest.GoogleAttestationRoots(), revocations, at)
	if err != nil {
		panic(err)
	}
	fmt.Println(kd.AttestationVersion, kd.AttestationSecurityLevel, kd.RootOfTrust().VerifiedBootState, kd.RootOfTrust().DeviceLocked, kd.Packages()[0].Name)
	err = attest.CheckKeyDescription(kd, attest.KeyDescriptionPolicy{Challenge: []byte("d688d763-6118-4ca6-94b2-e6cd9ed7e4e4")})
	fmt.Println(err)
	// Output:
	// 400 tee VERIFIED true com.google.android.attestation
	// <nil>
}

// A registration with the INSECURE development verifier, as the travel
// example's Go client does: the evidence is a signature by the client's
// key over the challenge.
func ExamplePolicy_Verify() {
	dev, err := attest.NewInsecureDevelopmentVerifier("insecure-development")
	if err != nil {
		panic(err)
	}
	policy, err := attest.NewPolicy(attest.PolicyConfig{Rules: []attest.Rule{
		{AppID: "com.example.travel", Verifiers: []attest.Verifier{dev}},
	}})
	if err != nil {
		panic(err)
	}

	// Client side.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nonce := "server-nonce-from-the-registration-endpoint"
	evidence, err := attest.InsecureDevelopmentEvidence(key, nonce)
	if err != nil {
		panic(err)
	}
	tp, _ := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	jkt := base64.RawURLEncoding.EncodeToString(tp)

	// Server side.
	res, err := policy.Verify(context.Background(), attest.Registration{
		AppID: "com.example.travel", AppVersion: "1.0", Platform: "android", Channel: "phone",
		Nonce: nonce, KeyThumbprint: jkt, Attestation: evidence,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Verdict, res.Insecure(), res.Facts()["insecure"])

	// Without attestation: the rule requires one.
	_, err = policy.Verify(context.Background(), attest.Registration{
		AppID: "com.example.travel", Platform: "android", Nonce: nonce, KeyThumbprint: jkt,
	})
	fmt.Println(err.(*attest.Error).Code)
	// Output:
	// insecure-development true true
	// attestation_required
}
