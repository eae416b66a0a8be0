package update

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/moatsec/moat/internal/strictjson"
)

// Media types carried in each signature's protected "typ" header. They keep
// a root signature from being accepted as a manifest signature and back.
const (
	typRoot     = "moat-update-root+json"
	typManifest = "moat-update-manifest+json"
)

// maxSignatures bounds the signatures one document may carry; maxKeys the
// keys a root may list per role.
const (
	maxSignatures = 32
	maxKeys       = 32
)

// envelope is the JWS JSON General Serialization (RFC 7515 §7.2.1) with
// nothing but protected headers.
type envelope struct {
	Payload    string         `json:"payload"`
	Signatures []envelopeSign `json:"signatures"`
}

type envelopeSign struct {
	Protected string `json:"protected"`
	Signature string `json:"signature"`
}

// protectedHeader is the only header a signature may have.
type protectedHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// signEnvelope signs payload with every signer and returns the JWS in
// General JSON Serialization. go-jose does the signing.
func signEnvelope(payload []byte, typ string, signers []crypto.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("moat/update: no signing key given")
	}
	if len(signers) > maxSignatures {
		return nil, fmt.Errorf("moat/update: at most %d signing keys", maxSignatures)
	}
	keys := make([]jose.SigningKey, 0, len(signers))
	seen := map[string]bool{}
	for _, s := range signers {
		if s == nil {
			return nil, fmt.Errorf("moat/update: nil signing key")
		}
		alg, err := algorithmFor(s.Public())
		if err != nil {
			return nil, err
		}
		kid, err := KeyID(s.Public())
		if err != nil {
			return nil, err
		}
		if seen[kid] {
			return nil, fmt.Errorf("moat/update: signing key %s given twice", kid)
		}
		seen[kid] = true
		keys = append(keys, jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: cryptosigner.Opaque(s), KeyID: kid}})
	}
	signer, err := jose.NewMultiSigner(keys, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, fmt.Errorf("moat/update: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("moat/update: signing failed: %w", err)
	}
	// go-jose writes one signature in the flattened form; normalize to the
	// general form so every document has the same shape.
	var full struct {
		Payload    string         `json:"payload"`
		Protected  string         `json:"protected"`
		Signature  string         `json:"signature"`
		Signatures []envelopeSign `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(obj.FullSerialize()), &full); err != nil {
		return nil, fmt.Errorf("moat/update: unexpected JWS serialization: %w", err)
	}
	env := envelope{Payload: full.Payload, Signatures: full.Signatures}
	if len(env.Signatures) == 0 {
		env.Signatures = []envelopeSign{{Protected: full.Protected, Signature: full.Signature}}
	}
	return json.Marshal(env)
}

// candidate is one signature that claims to be by key kid; verify checks
// it against a public key.
type candidate struct {
	kid    string
	verify func(pub crypto.PublicKey) bool
}

// countVerified returns how many distinct trusted keys made at least one
// valid signature among cands. Signatures by keys outside trusted are
// ignored; a key that signed twice counts once.
func countVerified(cands []candidate, trusted map[string]crypto.PublicKey) int {
	valid := map[string]bool{}
	for _, c := range cands {
		pub, ok := trusted[c.kid]
		if !ok || valid[c.kid] {
			continue
		}
		if c.verify(pub) {
			valid[c.kid] = true
		}
	}
	return len(valid)
}

// verifyEnvelope parses a JWS in General JSON Serialization, checks that
// at least threshold distinct keys of trusted signed it with the protected
// header typ, and returns the payload. It never returns the payload of a
// document that fails.
func verifyEnvelope(data []byte, typ string, trusted map[string]crypto.PublicKey, threshold int) ([]byte, error) {
	var env envelope
	if err := decodeStrict(data, &env, "payload", "signatures"); err != nil {
		return nil, err
	}
	if len(env.Signatures) == 0 || len(env.Signatures) > maxSignatures {
		return nil, malformed("a document needs 1 to %d signatures", maxSignatures)
	}
	if _, err := b64(env.Payload); err != nil {
		return nil, malformed("payload is not base64url")
	}
	cands := make([]candidate, 0, len(env.Signatures))
	for _, s := range env.Signatures {
		hb, err := b64(s.Protected)
		if err != nil {
			return nil, malformed("protected header is not base64url")
		}
		var h protectedHeader
		if err := decodeStrict(hb, &h, "alg", "kid", "typ"); err != nil {
			return nil, malformed("protected header must hold exactly alg, kid and typ")
		}
		if h.Typ != typ {
			return nil, malformed("signature is for another document type")
		}
		alg := jose.SignatureAlgorithm(h.Alg)
		if alg != jose.EdDSA && alg != jose.ES256 {
			return nil, malformed("signature algorithm must be EdDSA or ES256")
		}
		compact := s.Protected + "." + env.Payload + "." + s.Signature
		cands = append(cands, candidate{kid: h.Kid, verify: func(pub crypto.PublicKey) bool {
			want, err := algorithmFor(pub)
			if err != nil || want != alg {
				return false
			}
			obj, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{alg})
			if err != nil {
				return false
			}
			_, err = obj.Verify(pub)
			return err == nil
		}})
	}
	if n := countVerified(cands, trusted); n < threshold {
		return nil, fmt.Errorf("%w: %d valid signatures from trusted keys, %d required", ErrSignature, n, threshold)
	}
	payload, _ := b64(env.Payload)
	return payload, nil
}

// unverifiedPayload returns the payload of a JWS without checking any
// signature. Only for documents read back from the publisher's own store.
func unverifiedPayload(data []byte) ([]byte, error) {
	var env envelope
	if err := decodeStrict(data, &env, "payload", "signatures"); err != nil {
		return nil, err
	}
	p, err := b64(env.Payload)
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	return p, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

// maxJSONDepth bounds nesting in every document.
const maxJSONDepth = 16

// decodeStrict decodes one JSON object from data into v. It refuses
// duplicate member names at any depth (two parsers must never read two
// different documents from one signed text), member names that are not
// lower-case ASCII (encoding/json would match them to fields regardless
// of case), members v does not define,
// missing top-level members listed in required, nesting deeper than
// maxJSONDepth, and trailing data.
func decodeStrict(data []byte, v any, required ...string) error {
	top, err := strictjson.CheckEvery(data, maxJSONDepth, memberName)
	switch {
	case errors.Is(err, strictjson.ErrName):
		// encoding/json matches member names to fields without case
		// ("Size", "ſize" for "size"): another parser would ignore what
		// Go reads. Every member of these formats is lower-case ASCII,
		// so nothing else is one.
		return malformed("member name outside [a-z0-9_]")
	case err != nil:
		return malformed("%v", err)
	}
	for _, r := range required {
		if !slices.Contains(top, r) {
			return malformed("member %q is missing", r)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asType(err, &te); ok && te.Field != "" {
			return malformed("member %q has the wrong type or range", te.Field)
		}
		return malformed("unexpected member or wrong type")
	}
	return nil
}

func asType(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

// memberName reports whether k is 1 to 64 bytes of [a-z0-9_], the only
// member names the formats use.
func memberName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
