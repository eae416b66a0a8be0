package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// insecureDevelopmentLabel starts the message the development evidence
// signs, so the signature cannot be mistaken for any other.
const insecureDevelopmentLabel = "moat-insecure-development-attestation-v1\n"

// InsecureDevelopmentVerifier accepts evidence that any program can make:
// an ECDSA P-256 signature, by the key being registered, over the
// registration [Challenge]. It proves that the client holds the private
// key it registers and that the evidence is bound to this server nonce; it
// proves NOTHING about the app or the device (no platform vouches for
// them). Use it for emulators, simulators and tests only. Its results
// have Verdict [VerdictInsecure] so that logs, analytics and transcripts
// can say so.
type InsecureDevelopmentVerifier struct {
	now func() time.Time
}

var _ Verifier = (*InsecureDevelopmentVerifier)(nil)

// NewInsecureDevelopmentVerifier returns the development verifier. It
// refuses to run unless enable is exactly [FormatInsecureDevelopment]
// ("insecure-development"): the caller names the danger it enables.
func NewInsecureDevelopmentVerifier(enable string) (*InsecureDevelopmentVerifier, error) {
	if enable != FormatInsecureDevelopment {
		return nil, fmt.Errorf("moat/attest: the insecure development verifier runs only when enabled by name (%q)", FormatInsecureDevelopment)
	}
	return &InsecureDevelopmentVerifier{now: time.Now}, nil
}

// Format implements [Verifier].
func (v *InsecureDevelopmentVerifier) Format() string { return FormatInsecureDevelopment }

// insecureWire is the development evidence's wire object.
type insecureWire struct {
	Format    string          `json:"format"`
	JWK       json.RawMessage `json:"jwk"`
	Signature string          `json:"signature"`
}

func insecureDigest(challenge []byte) []byte {
	h := sha256.New()
	h.Write([]byte(insecureDevelopmentLabel))
	h.Write(challenge)
	return h.Sum(nil)
}

// Verify implements [Verifier]: the evidence's public key must have
// thumbprint ev.KeyThumbprint, and its signature must verify over
// SHA-256("moat-insecure-development-attestation-v1\n" || ev.Challenge).
func (v *InsecureDevelopmentVerifier) Verify(_ context.Context, ev *Evidence) (*Result, error) {
	var w insecureWire
	if err := json.Unmarshal(ev.Attestation, &w); err != nil {
		return nil, refuse(ErrMalformed, "development evidence: %v", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(w.JWK); err != nil {
		return nil, refuse(ErrMalformed, "development evidence jwk: %v", err)
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ErrMalformed, "development evidence key is not a public EC P-256 key")
	}
	jkt, err := thumbprint(pub)
	if err != nil || ev.KeyThumbprint == "" || jkt != ev.KeyThumbprint {
		return nil, refuse(ErrKeyBinding, "evidence key thumbprint %s", jkt)
	}
	sig, err := base64.RawURLEncoding.DecodeString(w.Signature)
	if err != nil {
		return nil, refuse(ErrMalformed, "development evidence signature is not base64url")
	}
	if len(ev.Challenge) == 0 || !ecdsa.VerifyASN1(pub, insecureDigest(ev.Challenge), sig) {
		return nil, refuse(ErrSignature, "development evidence signature over the challenge")
	}
	return &Result{
		Format: FormatInsecureDevelopment, Verdict: VerdictInsecure, PublicKey: pub,
		VerifiedAt: v.now(),
		Claims: map[string]string{
			"warning": "INSECURE development verifier: proves possession of the client key only, not a genuine app or device",
		},
	}, nil
}

// InsecureDevelopmentEvidence makes the development verifier's evidence
// for a registration: key is the client's key (the one it registers and
// signs DPoP proofs with; ECDSA P-256), nonce the server nonce. The
// result is the "attestation" member of the registration request.
func InsecureDevelopmentEvidence(key crypto.Signer, nonce string) (json.RawMessage, error) {
	if key == nil {
		return nil, errors.New("moat/attest: nil key")
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("moat/attest: development evidence needs an EC P-256 key")
	}
	jkt, err := thumbprint(pub)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: thumbprint: %w", err)
	}
	ch, err := Challenge(nonce, jkt)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(rand.Reader, insecureDigest(ch), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: signing development evidence: %w", err)
	}
	jwk, err := (&jose.JSONWebKey{Key: pub}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("moat/attest: encoding key: %w", err)
	}
	return json.Marshal(insecureWire{Format: FormatInsecureDevelopment, JWK: jwk, Signature: base64.RawURLEncoding.EncodeToString(sig)})
}
