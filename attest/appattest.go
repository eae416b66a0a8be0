package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// App Attest aaguids: "appattestdevelop" and "appattest" + 7 zero bytes.
var (
	aaguidDevelopment = []byte("appattestdevelop")
	aaguidProduction  = append([]byte("appattest"), 0, 0, 0, 0, 0, 0, 0)
)

// oidAppleNonce is the credential certificate extension holding
// SHA-256(authData || clientDataHash), used by App Attest and by the
// WebAuthn "apple" format.
var oidAppleNonce = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}

// AppAttestConfig configures [NewAppAttest].
type AppAttestConfig struct {
	// AppIDs lists the accepted app ids, each "TEAMID.BUNDLEID". Required:
	// an empty list is an error.
	AppIDs []string
	// Roots are the trusted roots of the credential certificate chain.
	// Required: use [AppleAppAttestationRoot].
	Roots []*x509.Certificate
	// Environments lists the accepted environments. Required: list
	// [Production] alone in production, add [Development] only for builds
	// signed with a development profile.
	Environments []Environment
	// Keys keeps attested keys and their counters. Required.
	Keys KeyStore
	// Now returns the verification time. Nil means time.Now.
	Now func() time.Time
}

// AppAttest verifies Apple App Attest attestations and assertions
// (DeviceCheck framework). It implements [Verifier] for
// [FormatAppleAppAttest]. It is safe for concurrent use.
type AppAttest struct {
	appIDs map[[32]byte]string
	pool   *x509.CertPool
	envs   map[Environment]bool
	keys   KeyStore
	now    func() time.Time
}

var _ Verifier = (*AppAttest)(nil)

// NewAppAttest returns an App Attest verifier.
func NewAppAttest(cfg AppAttestConfig) (*AppAttest, error) {
	if len(cfg.AppIDs) == 0 {
		return nil, errors.New("moat/attest: App Attest needs at least one app id")
	}
	if len(cfg.Roots) == 0 {
		return nil, errors.New("moat/attest: App Attest needs trusted roots (AppleAppAttestationRoot)")
	}
	if len(cfg.Environments) == 0 {
		return nil, errors.New("moat/attest: App Attest needs the accepted environments")
	}
	if cfg.Keys == nil {
		return nil, errors.New("moat/attest: App Attest needs a KeyStore")
	}
	a := &AppAttest{
		appIDs: make(map[[32]byte]string), pool: x509.NewCertPool(),
		envs: make(map[Environment]bool), keys: cfg.Keys, now: nowFunc(cfg.Now),
	}
	for _, id := range cfg.AppIDs {
		if !validAppleAppID(id) {
			return nil, fmt.Errorf("moat/attest: app id %q is not TEAMID.BUNDLEID", id)
		}
		a.appIDs[sha256.Sum256([]byte(id))] = id
	}
	for _, r := range cfg.Roots {
		if r == nil {
			return nil, errors.New("moat/attest: nil root certificate")
		}
		a.pool.AddCert(r)
	}
	for _, e := range cfg.Environments {
		if e != Production && e != Development {
			return nil, fmt.Errorf("moat/attest: unknown environment %q", e)
		}
		a.envs[e] = true
	}
	return a, nil
}

func validAppleAppID(id string) bool {
	i := bytes.IndexByte([]byte(id), '.')
	return i > 0 && i < len(id)-1
}

// Format implements [Verifier].
func (a *AppAttest) Format() string { return FormatAppleAppAttest }

// appAttestWire is the registration wire object for App Attest.
type appAttestWire struct {
	Format      string `json:"format"`
	KeyID       string `json:"key_id"`
	Attestation string `json:"attestation"`
}

// Verify implements [Verifier]: it verifies the attestation with
// ev.Challenge as clientDataHash and, when accepted, stores the key (id,
// public key, counter 0, receipt, bound client key thumbprint) in the
// KeyStore. A key id attested before is refused ([ErrKeyExists]).
func (a *AppAttest) Verify(ctx context.Context, ev *Evidence) (*Result, error) {
	var w appAttestWire
	if err := json.Unmarshal(ev.Attestation, &w); err != nil {
		return nil, refuse(ErrMalformed, "App Attest wire object: %v", err)
	}
	keyID, err := decodeB64(w.KeyID)
	if err != nil || len(keyID) != sha256.Size {
		return nil, refuse(ErrMalformed, "key_id is not base64 of 32 bytes")
	}
	obj, err := decodeB64(w.Attestation)
	if err != nil {
		return nil, refuse(ErrMalformed, "attestation is not base64")
	}
	res, err := a.VerifyAttestation(keyID, obj, ev.Challenge)
	if err != nil {
		return nil, err
	}
	if ev.AppID != "" && ev.AppID != res.AppID {
		return nil, refuse(ErrAppIDMismatch, "attested app %q, declared %q", res.AppID, ev.AppID)
	}
	pub, err := x509.MarshalPKIXPublicKey(res.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: encoding key: %w", err)
	}
	rec := KeyRecord{
		KeyID: keyID, PublicKey: pub, Counter: 0, Receipt: res.Receipt, AppID: res.AppID,
		Environment: res.Environment, KeyThumbprint: ev.KeyThumbprint, CreatedAt: res.VerifiedAt,
	}
	if err := a.keys.CreateKey(ctx, rec); err != nil {
		if errors.Is(err, ErrKeyExists) {
			return nil, refuse(ErrKeyExists, "")
		}
		return nil, fmt.Errorf("moat/attest: storing App Attest key: %w", err)
	}
	return res, nil
}

// ClientDataHash returns SHA-256 of clientData: the clientDataHash an app
// passes to DCAppAttestService when it hands over the client data itself.
// (Apple's documentation sample passes a raw challenge instead; give such
// a value to [AppAttest.VerifyAttestation] as it is.)
func ClientDataHash(clientData []byte) []byte {
	sum := sha256.Sum256(clientData)
	return sum[:]
}

// VerifyAttestationClientData is [AppAttest.VerifyAttestation] for an app
// that attested over clientData: it hashes clientData with SHA-256 and
// checks the attestation against that hash.
func (a *AppAttest) VerifyAttestationClientData(keyID, attestation, clientData []byte) (*Result, error) {
	return a.VerifyAttestation(keyID, attestation, ClientDataHash(clientData))
}

// VerifyAssertionClientData is [AppAttest.VerifyAssertion] for the client
// data the app signed (a request body with a challenge in it, say): it
// hashes clientData with SHA-256 and checks the assertion against that
// hash.
func (a *AppAttest) VerifyAssertionClientData(ctx context.Context, keyID, assertion, clientData []byte) (*Result, error) {
	return a.VerifyAssertion(ctx, keyID, assertion, ClientDataHash(clientData))
}

// appAttestStmt is the attStmt of an "apple-appattest" object.
type appAttestStmt struct {
	X5C     [][]byte `cbor:"x5c"`
	Receipt []byte   `cbor:"receipt"`
}

// VerifyAttestation checks an App Attest attestation object (raw CBOR)
// for keyID against clientDataHash, following Apple's validation steps:
//
//  1. the credential certificate chain (attStmt.x5c) verifies to a
//     configured root at the verification time;
//  2. the certificate's nonce extension 1.2.840.113635.100.8.2 equals
//     SHA-256(authData || clientDataHash);
//  3. SHA-256 of the certificate's public key (X9.62 uncompressed point)
//     equals keyID;
//  4. authData's rpIdHash is SHA-256 of a configured app id;
//  5. the counter is 0;
//  6. the aaguid names an accepted environment ("appattestdevelop", or
//     "appattest" followed by exactly seven zero bytes);
//  7. the credential id equals keyID.
//
// clientDataHash is appended as given: pass SHA-256 of your client data,
// or, for a registration, the [Challenge]. It stores nothing; [AppAttest.Verify]
// also stores the key.
func (a *AppAttest) VerifyAttestation(keyID, attestation, clientDataHash []byte) (*Result, error) {
	now := a.now()
	if now.IsZero() {
		return nil, errors.New("moat/attest: clock returned the zero time")
	}
	if len(clientDataHash) == 0 {
		return nil, refuse(ErrMalformed, "empty clientDataHash")
	}
	st, ad, err := parseAppAttestObject(attestation)
	if err != nil {
		return nil, err
	}
	// 1. Chain.
	cert, err := verifyX5C(st.X5C, a.pool, now)
	if err != nil {
		return nil, err
	}
	// 2. Nonce.
	if err := checkAppleNonce(cert, ad.raw, clientDataHash); err != nil {
		return nil, err
	}
	// 3. Key id.
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ErrMalformed, "credential certificate key is not P-256")
	}
	point, err := pub.Bytes()
	if err != nil {
		return nil, refuse(ErrMalformed, "credential key: %v", err)
	}
	sum := sha256.Sum256(point)
	if len(keyID) != sha256.Size || subtle.ConstantTimeCompare(sum[:], keyID) != 1 {
		return nil, refuse(ErrKeyIDMismatch, "key id is not SHA-256 of the attested key")
	}
	// 4. App id.
	appID, ok := a.appIDs[[32]byte(ad.rpIDHash)]
	if !ok {
		return nil, refuse(ErrAppIDMismatch, "rpIdHash matches no accepted app id")
	}
	// 5. Counter.
	if ad.counter != 0 {
		return nil, refuse(ErrCounter, "attestation counter is %d, want 0", ad.counter)
	}
	// 6. Environment.
	if ad.flags&flagAT == 0 {
		return nil, refuse(ErrMalformed, "authenticator data has no attested credential")
	}
	var env Environment
	switch {
	case bytes.Equal(ad.aaguid, aaguidProduction):
		env = Production
	case bytes.Equal(ad.aaguid, aaguidDevelopment):
		env = Development
	default:
		return nil, refuse(ErrEnvironment, "unknown aaguid %q", ad.aaguid)
	}
	if !a.envs[env] {
		return nil, refuse(ErrEnvironment, "%s attestation, verifier accepts %s", env, a.envNames())
	}
	// 7. Credential id.
	if !bytes.Equal(ad.credentialID, keyID) {
		return nil, refuse(ErrKeyIDMismatch, "credential id is not the key id")
	}
	return &Result{
		Format: FormatAppleAppAttest, Verdict: VerdictVerified, Environment: env, AppID: appID,
		KeyID: bytes.Clone(keyID), PublicKey: pub, Counter: 0, Receipt: bytes.Clone(st.Receipt),
		VerifiedAt: now,
	}, nil
}

// parseAppAttestObject decodes an "apple-appattest" attestation object
// into its statement and authenticator data, without verifying anything.
func parseAppAttestObject(attestation []byte) (*appAttestStmt, *authenticatorData, error) {
	ao, err := parseAttestationObject(attestation)
	if err != nil {
		return nil, nil, err
	}
	if ao.Fmt != FormatAppleAppAttest {
		return nil, nil, refuse(ErrMalformed, "fmt is %q, want %q", ao.Fmt, FormatAppleAppAttest)
	}
	var st appAttestStmt
	if err := cborDec.Unmarshal(ao.AttStmt, &st); err != nil {
		return nil, nil, refuse(ErrMalformed, "attStmt: %v", err)
	}
	if len(st.X5C) < 2 || len(st.X5C) > maxChainLen {
		return nil, nil, refuse(ErrMalformed, "x5c holds %d certificates, want credential and intermediate", len(st.X5C))
	}
	ad, err := parseAuthenticatorData(ao.AuthData)
	if err != nil {
		return nil, nil, err
	}
	return &st, ad, nil
}

func (a *AppAttest) envNames() string {
	switch {
	case a.envs[Production] && a.envs[Development]:
		return "production and development"
	case a.envs[Development]:
		return "development only"
	}
	return "production only"
}

// verifyX5C parses an x5c array (leaf first) and verifies it to pool at
// now. It returns the leaf.
func verifyX5C(x5c [][]byte, pool *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(x5c))
	for i, der := range x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, refuse(ErrMalformed, "x5c[%d]: %v", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	_, err := certs[0].Verify(opts)
	if err == nil {
		return certs[0], nil
	}
	// x509 checks validity dates before signatures and roots. The most
	// serious failure wins: a chain that does not lead to a trusted root
	// is reported as such, not as merely expired. Verify again inside the
	// leaf's validity; only if the chain holds there is "expired" the
	// answer.
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		leaf := certs[0]
		opts.CurrentTime = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		if _, err2 := leaf.Verify(opts); err2 != nil {
			var inv2 x509.CertificateInvalidError
			if !errors.As(err2, &inv2) || inv2.Reason != x509.Expired {
				return nil, chainError(err2, opts.CurrentTime)
			}
		}
	}
	return nil, chainError(err, now)
}

// chainError maps an x509 verification error to a refusal.
func chainError(err error, now time.Time) *Error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return refuse(ErrCertificateExpired, "%s at %s", inv.Cert.Subject, now.UTC().Format(time.RFC3339))
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return refuse(ErrUnknownRoot, "%v", err)
	}
	return refuse(ErrChain, "%v", err)
}

// checkAppleNonce compares cert's nonce extension with
// SHA-256(authData || clientDataHash).
func checkAppleNonce(cert *x509.Certificate, authData, clientDataHash []byte) error {
	var val []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidAppleNonce) {
			if val != nil {
				return refuse(ErrMalformed, "nonce extension appears twice")
			}
			val = e.Value
		}
	}
	if val == nil {
		return refuse(ErrMalformed, "credential certificate has no nonce extension")
	}
	var ext struct {
		Nonce []byte `asn1:"explicit,tag:1"`
	}
	rest, err := asn1.Unmarshal(val, &ext)
	if err != nil || len(rest) != 0 {
		return refuse(ErrMalformed, "nonce extension does not parse")
	}
	h := sha256.New()
	h.Write(authData)
	h.Write(clientDataHash)
	if subtle.ConstantTimeCompare(h.Sum(nil), ext.Nonce) != 1 {
		return refuse(ErrNonceMismatch, "certificate nonce is not SHA-256(authData || clientDataHash)")
	}
	return nil
}

// assertionObject is an App Attest assertion.
type assertionObject struct {
	Signature         []byte `cbor:"signature"`
	AuthenticatorData []byte `cbor:"authenticatorData"`
}

// ParseAppAttestAssertion decodes an assertion's CBOR without verifying
// it and returns its counter. Verification is [VerifyAppAttestAssertion].
func ParseAppAttestAssertion(assertion []byte) (counter uint32, err error) {
	_, ad, err := parseAssertion(assertion)
	if err != nil {
		return 0, err
	}
	return ad.counter, nil
}

func parseAssertion(b []byte) (*assertionObject, *authenticatorData, error) {
	if len(b) == 0 || len(b) > maxCBOR {
		return nil, nil, refuse(ErrMalformed, "assertion of %d bytes", len(b))
	}
	var as assertionObject
	if err := cborDec.Unmarshal(b, &as); err != nil {
		return nil, nil, refuse(ErrMalformed, "assertion: %v", err)
	}
	if len(as.Signature) == 0 || len(as.AuthenticatorData) == 0 {
		return nil, nil, refuse(ErrMalformed, "assertion lacks signature or authenticatorData")
	}
	// App Attest assertions carry the 37-byte header only (rpIdHash, flags,
	// counter); their flags byte has AT set without attested data.
	if len(as.AuthenticatorData) != 37 {
		return nil, nil, refuse(ErrMalformed, "assertion authenticator data of %d bytes, want 37", len(as.AuthenticatorData))
	}
	d := as.AuthenticatorData
	ad := &authenticatorData{raw: d, rpIDHash: d[:32], flags: d[32], counter: binary.BigEndian.Uint32(d[33:37])}
	return &as, ad, nil
}

// VerifyAppAttestAssertion checks an App Attest assertion (raw CBOR)
// made with pub, the key attested for appID:
//
//  1. the ECDSA P-256 signature verifies over
//     nonce = SHA-256(authenticatorData || clientDataHash);
//  2. rpIdHash is SHA-256(appID);
//  3. the counter is greater than storedCounter.
//
// clientDataHash is SHA-256 of the client data the app signed. It returns
// the assertion's counter, which the caller must store (atomically:
// [AppAttest.VerifyAssertion] does).
func VerifyAppAttestAssertion(assertion []byte, pub *ecdsa.PublicKey, appID string, clientDataHash []byte, storedCounter uint32) (uint32, error) {
	if pub == nil {
		return 0, errors.New("moat/attest: nil public key")
	}
	as, ad, err := parseAssertion(assertion)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	h.Write(ad.raw)
	h.Write(clientDataHash)
	nonce := h.Sum(nil)
	digest := sha256.Sum256(nonce)
	if !ecdsa.VerifyASN1(pub, digest[:], as.Signature) {
		return 0, refuse(ErrSignature, "assertion signature")
	}
	want := sha256.Sum256([]byte(appID))
	if subtle.ConstantTimeCompare(want[:], ad.rpIDHash) != 1 {
		return 0, refuse(ErrAppIDMismatch, "assertion rpIdHash is not SHA-256(%q)", appID)
	}
	if ad.counter <= storedCounter {
		return 0, refuse(ErrCounter, "assertion counter %d not above stored %d (replay)", ad.counter, storedCounter)
	}
	return ad.counter, nil
}

// VerifyAssertion checks an assertion by the App Attest key keyID, stored
// by an earlier [AppAttest.Verify], and advances the key's counter with a
// compare-and-set: of two requests carrying assertions, only one can move
// the counter from a given value, so a replayed or concurrent duplicate is
// refused ([ErrCounter]). clientDataHash is SHA-256 of the client data the
// app signed (which should contain a challenge from [Challenges]).
func (a *AppAttest) VerifyAssertion(ctx context.Context, keyID, assertion, clientDataHash []byte) (*Result, error) {
	rec, err := a.keys.Key(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return nil, refuse(ErrUnknownKey, "")
	}
	if err != nil {
		return nil, fmt.Errorf("moat/attest: loading App Attest key: %w", err)
	}
	if _, ok := a.appIDs[sha256.Sum256([]byte(rec.AppID))]; !ok {
		return nil, refuse(ErrAppIDMismatch, "key belongs to app %q, not accepted here", rec.AppID)
	}
	pk, err := x509.ParsePKIXPublicKey(rec.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("moat/attest: stored key for App Attest does not parse: %w", err)
	}
	pub, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("moat/attest: stored App Attest key is not ECDSA")
	}
	counter, err := VerifyAppAttestAssertion(assertion, pub, rec.AppID, clientDataHash, rec.Counter)
	if err != nil {
		return nil, err
	}
	if err := a.keys.UpdateCounter(ctx, keyID, rec.Counter, counter); err != nil {
		if errors.Is(err, ErrCounterConflict) {
			return nil, refuse(ErrCounter, "counter changed concurrently (replay)")
		}
		return nil, fmt.Errorf("moat/attest: storing App Attest counter: %w", err)
	}
	return &Result{
		Format: FormatAppleAppAttest, Verdict: VerdictVerified, Environment: rec.Environment,
		AppID: rec.AppID, KeyID: bytes.Clone(keyID), PublicKey: pub, Counter: counter, VerifiedAt: a.now(),
	}, nil
}
