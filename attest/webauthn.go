package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"time"
)

// WebAuthn attestation statement formats ([WebAuthnResult].Format).
const (
	WebAuthnNone       = "none"
	WebAuthnPacked     = "packed"
	WebAuthnFIDOU2F    = "fido-u2f"
	WebAuthnApple      = "apple"
	WebAuthnAndroidKey = "android-key"
	WebAuthnTPM        = "tpm"
)

// oidFIDOAAGUID is the FIDO certificate extension holding the aaguid.
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// oidTCGKPAIKCertificate is the TPM attestation identity key EKU.
var oidTCGKPAIKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}

// WebAuthnOptions says what a WebAuthn registration must match.
type WebAuthnOptions struct {
	// Challenge is the challenge the server gave to
	// navigator.credentials.create (raw bytes). Required.
	Challenge []byte
	// Origin is the expected clientDataJSON origin. Required.
	Origin string
	// RPID is the relying party id (a domain). Required.
	RPID string
	// Roots are the trust anchors of attestation statements (matched by
	// public key, or as the issuer of the last certificate). Empty means
	// no statement can be trusted: Trusted is then always false, but the
	// statement's signature and certificate chain are still verified.
	Roots []*x509.Certificate
	// At is the verification time. Required.
	At time.Time
	// InsecureAllowSHA1 accepts statements signed with RS1 (RSASSA-PKCS1
	// v1.5 with SHA-1), which some TPMs produce. False refuses them.
	InsecureAllowSHA1 bool
}

// WebAuthnResult is a verified WebAuthn registration.
type WebAuthnResult struct {
	// Format is the attestation statement format ("packed", "tpm", ...).
	Format string
	// CredentialID is the new credential's id.
	CredentialID []byte
	// PublicKey is the credential's public key; Algorithm its COSE alg.
	PublicKey crypto.PublicKey
	Algorithm int64
	// SignCount is the authenticator's signature counter.
	SignCount uint32
	// AAGUID identifies the authenticator model.
	AAGUID []byte
	// UserVerified reports the UV flag.
	UserVerified bool
	// Trusted reports that the attestation certificate chain ends at one
	// of the configured Roots. A "none" or self attestation is never
	// trusted.
	Trusted bool
	// Chain is the attestation certificate chain (x5c), if any.
	Chain []*x509.Certificate
}

// webAuthnCredential is the RegistrationResponseJSON a browser sends.
type webAuthnCredential struct {
	ID       string `json:"id"`
	RawID    string `json:"rawId"`
	Type     string `json:"type"`
	Response struct {
		ClientDataJSON    string `json:"clientDataJSON"`
		AttestationObject string `json:"attestationObject"`
	} `json:"response"`
}

type collectedClientData struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	Origin    string `json:"origin"`
}

// VerifyWebAuthnRegistration verifies a WebAuthn registration response
// (the RegistrationResponseJSON of navigator.credentials.create, W3C
// WebAuthn Level 2 §7.1) and its attestation statement. It checks:
//
//   - id equals rawId, type is "public-key";
//   - clientDataJSON: type "webauthn.create", the challenge, the origin;
//   - authenticator data: rpIdHash = SHA-256(RPID), user present, an
//     attested credential whose id is rawId and whose COSE key parses;
//   - the statement, per format: "none" (empty), "packed" (x5c or self
//     attestation), "fido-u2f", "apple" (nonce extension, key match),
//     "android-key" (signature, key match, KeyDescription challenge =
//     clientDataHash, no allApplications) and "tpm" (certInfo, pubArea,
//     AIK certificate requirements, signature);
//   - any x5c chain: each link's issuer and signature, validity at At;
//     Trusted when it ends at one of Roots.
//
// It does not check: token binding, extensions, the credential's
// uniqueness, metadata (FIDO MDS) or the AIK certificate's subject
// alternative name details.
func VerifyWebAuthnRegistration(credentialJSON []byte, opts WebAuthnOptions) (*WebAuthnResult, error) {
	if len(opts.Challenge) == 0 || opts.Origin == "" || opts.RPID == "" || opts.At.IsZero() {
		return nil, errors.New("moat/attest: WebAuthn verification needs the challenge, origin, RP id and time")
	}
	var cred webAuthnCredential
	if err := json.Unmarshal(credentialJSON, &cred); err != nil {
		return nil, refuse(ErrMalformed, "credential JSON: %v", err)
	}
	rawID, err := decodeB64(cred.RawID)
	if err != nil || len(rawID) == 0 || cred.ID != cred.RawID {
		return nil, refuse(ErrWebAuthn, "id and rawId differ or are not base64url")
	}
	if cred.Type != "public-key" {
		return nil, refuse(ErrWebAuthn, "credential type %q", cred.Type)
	}
	cdj, err := decodeB64(cred.Response.ClientDataJSON)
	if err != nil {
		return nil, refuse(ErrMalformed, "clientDataJSON is not base64")
	}
	var cd collectedClientData
	if err := json.Unmarshal(cdj, &cd); err != nil {
		return nil, refuse(ErrMalformed, "clientDataJSON: %v", err)
	}
	if cd.Type != "webauthn.create" {
		return nil, refuse(ErrWebAuthn, "client data type %q", cd.Type)
	}
	ch, err := decodeB64(cd.Challenge)
	if err != nil || subtle.ConstantTimeCompare(ch, opts.Challenge) != 1 {
		return nil, refuse(ErrChallengeMismatch, "client data challenge differs")
	}
	if cd.Origin != opts.Origin {
		return nil, refuse(ErrWebAuthn, "origin %q, want %q", cd.Origin, opts.Origin)
	}
	aob, err := decodeB64(cred.Response.AttestationObject)
	if err != nil {
		return nil, refuse(ErrMalformed, "attestationObject is not base64")
	}
	ao, err := parseAttestationObject(aob)
	if err != nil {
		return nil, err
	}
	ad, err := parseAuthenticatorData(ao.AuthData)
	if err != nil {
		return nil, err
	}
	rp := sha256.Sum256([]byte(opts.RPID))
	if subtle.ConstantTimeCompare(rp[:], ad.rpIDHash) != 1 {
		return nil, refuse(ErrAppIDMismatch, "rpIdHash is not SHA-256(%q)", opts.RPID)
	}
	if ad.flags&flagUP == 0 {
		return nil, refuse(ErrWebAuthn, "user not present")
	}
	if ad.flags&flagAT == 0 {
		return nil, refuse(ErrWebAuthn, "no attested credential data")
	}
	if !bytes.Equal(ad.credentialID, rawID) {
		return nil, refuse(ErrKeyIDMismatch, "credential id is not rawId")
	}
	pub, alg, err := parseCOSEKey(ad.credentialKey)
	if err != nil {
		return nil, err
	}
	cdh := sha256.Sum256(cdj)
	st := &webAuthnStatement{ad: ad, cdh: cdh[:], pub: pub, alg: alg, opts: &opts}
	if err := st.verify(ao.Fmt, ao.AttStmt); err != nil {
		return nil, err
	}
	return &WebAuthnResult{
		Format: ao.Fmt, CredentialID: rawID, PublicKey: pub, Algorithm: alg, SignCount: ad.counter,
		AAGUID: bytes.Clone(ad.aaguid), UserVerified: ad.flags&flagUV != 0, Trusted: st.trusted, Chain: st.chain,
	}, nil
}

// webAuthnStatement verifies one attestation statement.
type webAuthnStatement struct {
	ad      *authenticatorData
	cdh     []byte
	pub     crypto.PublicKey
	alg     int64
	opts    *WebAuthnOptions
	trusted bool
	chain   []*x509.Certificate
}

// stmtFields is the union of the statement members the formats use.
type stmtFields struct {
	Alg      *int64   `cbor:"alg"`
	Sig      []byte   `cbor:"sig"`
	X5C      [][]byte `cbor:"x5c"`
	Ver      string   `cbor:"ver"`
	CertInfo []byte   `cbor:"certInfo"`
	PubArea  []byte   `cbor:"pubArea"`
	ECDAAKey []byte   `cbor:"ecdaaKeyId"`
}

func (s *webAuthnStatement) verify(format string, raw []byte) error {
	var f stmtFields
	if err := cborDec.Unmarshal(raw, &f); err != nil {
		return refuse(ErrMalformed, "attStmt: %v", err)
	}
	if len(f.ECDAAKey) > 0 {
		return refuse(ErrAlgorithm, "ECDAA attestation is not supported")
	}
	signed := append(bytes.Clone(s.ad.raw), s.cdh...)
	switch format {
	case WebAuthnNone:
		if f.Alg != nil || f.Sig != nil || f.X5C != nil || f.CertInfo != nil {
			return refuse(ErrMalformed, `"none" statement is not empty`)
		}
		return nil
	case WebAuthnPacked:
		if f.Alg == nil || len(f.Sig) == 0 {
			return refuse(ErrMalformed, "packed statement lacks alg or sig")
		}
		if len(f.X5C) == 0 { // self attestation
			if *f.Alg != s.alg {
				return refuse(ErrAlgorithm, "self attestation alg %d, key alg %d", *f.Alg, s.alg)
			}
			return verifyCOSESignature(s.pub, *f.Alg, signed, f.Sig, s.opts.InsecureAllowSHA1)
		}
		if err := s.loadChain(f.X5C); err != nil {
			return err
		}
		if err := verifyCOSESignature(s.chain[0].PublicKey, *f.Alg, signed, f.Sig, s.opts.InsecureAllowSHA1); err != nil {
			return err
		}
		return s.checkCertAAGUID(s.chain[0])
	case WebAuthnFIDOU2F:
		if len(f.X5C) != 1 || len(f.Sig) == 0 {
			return refuse(ErrMalformed, "fido-u2f statement needs one certificate and a signature")
		}
		if err := s.loadChain(f.X5C); err != nil {
			return err
		}
		att, ok := s.chain[0].PublicKey.(*ecdsa.PublicKey)
		cred, ok2 := s.pub.(*ecdsa.PublicKey)
		if !ok || !ok2 || att.Curve != elliptic.P256() || cred.Curve != elliptic.P256() {
			return refuse(ErrAlgorithm, "fido-u2f keys must be P-256")
		}
		pt, _ := cred.Bytes()
		msg := append([]byte{0}, s.ad.rpIDHash...)
		msg = append(append(append(msg, s.cdh...), s.ad.credentialID...), pt...)
		return verifyCOSESignature(att, coseES256, msg, f.Sig, false)
	case WebAuthnApple:
		if len(f.X5C) == 0 {
			return refuse(ErrMalformed, "apple statement lacks x5c")
		}
		if err := s.loadChain(f.X5C); err != nil {
			return err
		}
		if err := checkAppleNonce(s.chain[0], s.ad.raw, s.cdh); err != nil {
			return err
		}
		if !samePublicKey(s.chain[0].PublicKey, s.pub) {
			return refuse(ErrKeyIDMismatch, "certificate key is not the credential key")
		}
		return nil
	case WebAuthnAndroidKey:
		return s.verifyAndroidKey(&f, signed)
	case WebAuthnTPM:
		return s.verifyTPM(&f)
	}
	return refuse(ErrUnknownFormat, "WebAuthn statement format %q", format)
}

// loadChain parses x5c, checks its links and validity at the time, and
// sets trusted when it ends at a configured root.
func (s *webAuthnStatement) loadChain(x5c [][]byte) error {
	if len(x5c) > maxChainLen {
		return refuse(ErrMalformed, "x5c of %d certificates", len(x5c))
	}
	for i, der := range x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return refuse(ErrMalformed, "x5c[%d]: %v", i, err)
		}
		s.chain = append(s.chain, c)
	}
	if err := verifyLinks(s.chain); err != nil {
		return err
	}
	if err := checkValidity(s.chain, s.opts.At); err != nil {
		return err
	}
	if len(s.opts.Roots) > 0 {
		err := anchorChain(s.chain[len(s.chain)-1], s.opts.Roots, s.opts.At)
		if err != nil && !errors.Is(err, ErrUnknownRoot) {
			return err
		}
		s.trusted = err == nil
	}
	return nil
}

// checkCertAAGUID compares the FIDO aaguid extension, when present, with
// the authenticator data's aaguid.
func (s *webAuthnStatement) checkCertAAGUID(c *x509.Certificate) error {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidFIDOAAGUID) {
			var v []byte
			if rest, err := asn1.Unmarshal(e.Value, &v); err != nil || len(rest) != 0 || !bytes.Equal(v, s.ad.aaguid) {
				return refuse(ErrWebAuthn, "certificate aaguid differs from authenticator data")
			}
		}
	}
	return nil
}

func (s *webAuthnStatement) verifyAndroidKey(f *stmtFields, signed []byte) error {
	if f.Alg == nil || len(f.Sig) == 0 || len(f.X5C) == 0 {
		return refuse(ErrMalformed, "android-key statement lacks alg, sig or x5c")
	}
	if err := s.loadChain(f.X5C); err != nil {
		return err
	}
	leaf := s.chain[0]
	if err := verifyCOSESignature(leaf.PublicKey, *f.Alg, signed, f.Sig, s.opts.InsecureAllowSHA1); err != nil {
		return err
	}
	if !samePublicKey(leaf.PublicKey, s.pub) {
		return refuse(ErrKeyIDMismatch, "certificate key is not the credential key")
	}
	var ext []byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidKeyDescription) {
			ext = e.Value
		}
	}
	kd, err := ParseKeyDescription(ext)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(kd.AttestationChallenge, s.cdh) != 1 {
		return refuse(ErrChallengeMismatch, "attestation challenge is not the clientDataHash")
	}
	if kd.SoftwareEnforced.AllApplications || kd.HardwareEnforced.AllApplications {
		return refuse(ErrWebAuthn, "key usable by all applications")
	}
	return nil
}

// verifyLinks checks that each certificate is issued (name and
// signature) by the next one.
func verifyLinks(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		c, parent := chain[i], chain[i+1]
		if !bytes.Equal(c.RawIssuer, parent.RawSubject) {
			return refuse(ErrChain, "certificate %d issuer %q does not match certificate %d subject %q", i, c.Issuer, i+1, parent.Subject)
		}
		if err := c.CheckSignatureFrom(parent); err != nil {
			return refuse(ErrChain, "certificate %d not signed by certificate %d: %v", i, i+1, err)
		}
	}
	return nil
}

// checkValidity checks every certificate's validity period at at.
func checkValidity(chain []*x509.Certificate, at time.Time) error {
	for i, c := range chain {
		if at.Before(c.NotBefore) || at.After(c.NotAfter) {
			return refuse(ErrCertificateExpired, "certificate %d (%s) valid %s to %s, not at %s", i, c.Subject,
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
