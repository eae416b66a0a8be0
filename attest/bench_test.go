package attest

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Each benchmark has a "baseline" sub-benchmark: the bare cryptographic
// operation the verification cannot avoid, so figures read as ratios.

func BenchmarkAppAttestAttestation(b *testing.B) {
	sample := readTestdata(b, "appattest/apple-doc-sample.attestation.cbor")
	at := time.Date(2024, 4, 18, 12, 0, 0, 0, time.UTC)
	a := newAppAttest(b, []string{appleSampleAppID}, []Environment{Production}, at)
	keyID := mustB64(b, appleSampleKeyID)
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.VerifyAttestation(keyID, sample, []byte("test_server_challenge")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_x509_chain", func(b *testing.B) {
		st, _, err := parseAppAttestObject(sample)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verifyX5C(st.X5C, a.pool, at); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppAttestAssertion(b *testing.B) {
	var node struct{ AssertionBase64, PublicKeyPem, ClientData string }
	if err := json.Unmarshal(readTestdata(b, "appattest/node-app-attest.assertion.json"), &node); err != nil {
		b.Fatal(err)
	}
	as := mustB64(b, node.AssertionBase64)
	pub := parsePublicKeyPEM(b, node.PublicKeyPem)
	cdh := sha([]byte(node.ClientData))
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := VerifyAppAttestAssertion(as, pub, nodeAppID, cdh, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_ecdsa_p256", func(b *testing.B) {
		o, ad, err := parseAssertion(as)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha(sha(append(append([]byte{}, ad.raw...), cdh...)))
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(pub, digest, o.Signature) {
				b.Fatal("bad signature")
			}
		}
	})
}

func BenchmarkAndroidKey(b *testing.B) {
	chain := readChain(b, "androidkey/caiman_sdk36_TEE_EC_RKP.pem")
	at := mustTime(b, "2025-09-26T15:31:20.964Z")
	v, err := NewAndroidKey(AndroidKeyConfig{
		Roots: GoogleAttestationRoots(), Revocations: emptyRevocations(b), Now: fixedNow(at),
		Packages: []AndroidPackage{{Name: "com.google.android.attestation", SignatureDigests: [][]byte{mustB64(b, "EDk47kU35Z6O55L2VFBPuDRvxrNG0LvEQV/DOfz8jsE=")}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	challenge := []byte("d688d763-6118-4ca6-94b2-e6cd9ed7e4e4")
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyChain(chain, challenge); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_signatures", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := verifyLinks(chain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse_key_description", func(b *testing.B) {
		ext := keyDescriptionExt(b, chain[0])
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseKeyDescription(ext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPlayIntegrity(b *testing.B) {
	k := newPlayKeys(b)
	payload := playPayload(sha([]byte("x")), testTime)
	token := playToken(b, k, payload, jose.ES256, jose.A256KW)
	b.Run("decrypt_and_verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodePlayIntegrityToken(token, k.dec, &k.sig.PublicKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_jws_es256", func(b *testing.B) {
		body, _ := json.Marshal(payload)
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.sig}, nil)
		jws, _ := signer.Sign(body)
		compact, _ := jws.CompactSerialize()
		b.ReportAllocs()
		for b.Loop() {
			s, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Verify(&k.sig.PublicKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPolicyInsecureDevelopment(b *testing.B) {
	key := newKey(b)
	jkt, _ := thumbprint(&key.PublicKey)
	ev, err := InsecureDevelopmentEvidence(key, "nonce")
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPolicy(PolicyConfig{Rules: []Rule{{Verifiers: []Verifier{mustInsecure(b)}}}})
	if err != nil {
		b.Fatal(err)
	}
	reg := Registration{AppID: "a", Platform: "ios", Nonce: "nonce", KeyThumbprint: jkt, Attestation: ev}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Verify(context.Background(), reg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_ecdsa_p256", func(b *testing.B) {
		ch, _ := Challenge("nonce", jkt)
		d := insecureDigest(ch)
		sig, _ := ecdsa.SignASN1(nil, key, d)
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&key.PublicKey, d, sig) {
				b.Fatal("bad")
			}
		}
	})
}
