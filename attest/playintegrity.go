package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/kv"
)

// DefaultPlayIntegrityMaxAge is the verdict age accepted when
// PlayIntegrityConfig.MaxAge is zero.
const DefaultPlayIntegrityMaxAge = 5 * time.Minute

// playIntegrityFutureSkew is how far in the future a verdict's timestamp
// may be (clock skew between Google and this server).
const playIntegrityFutureSkew = time.Minute

// maxPlayIntegrityToken bounds the size of a token.
const maxPlayIntegrityToken = 16 << 10

// DeviceIntegrity is a Play Integrity device recognition level.
type DeviceIntegrity int

// Device integrity levels, weakest first. DeviceIntegrityDefault means
// MEETS_DEVICE_INTEGRITY in a config.
const (
	DeviceIntegrityDefault DeviceIntegrity = iota
	DeviceIntegrityBasic
	DeviceIntegrityDevice
	DeviceIntegrityStrong
)

var deviceIntegrityLabels = map[string]DeviceIntegrity{
	"MEETS_BASIC_INTEGRITY":  DeviceIntegrityBasic,
	"MEETS_DEVICE_INTEGRITY": DeviceIntegrityDevice,
	"MEETS_STRONG_INTEGRITY": DeviceIntegrityStrong,
}

// PlayIntegrityConfig configures [NewPlayIntegrity].
type PlayIntegrityConfig struct {
	// PackageName is the app's package name. Required.
	PackageName string
	// DecryptionKey is the AES-256 key from the Play Console (response
	// encryption, "decryption key", 32 bytes). Required.
	DecryptionKey []byte
	// VerificationKey is the EC P-256 key from the Play Console
	// ("verification key"). Required.
	VerificationKey *ecdsa.PublicKey
	// CertificateDigests are the SHA-256 digests of the app's signing
	// certificates as Play reports them. Required unless
	// InsecureSkipCertificateDigest.
	CertificateDigests [][]byte
	// InsecureSkipCertificateDigest accepts any signing certificate digest
	// (the app recognition verdict is still required). False (the
	// default) checks them.
	InsecureSkipCertificateDigest bool
	// MinDeviceIntegrity is the device recognition level required. Zero
	// means MEETS_DEVICE_INTEGRITY.
	MinDeviceIntegrity DeviceIntegrity
	// MaxAge is how old a verdict may be. Zero means
	// DefaultPlayIntegrityMaxAge.
	MaxAge time.Duration
	// Replay remembers the nonces and request hashes of accepted verdicts
	// for MaxAge, so each is accepted once. Required; share it between
	// server instances.
	Replay kv.Store
	// Now returns the verification time. Nil means time.Now.
	Now func() time.Time
}

// PlayIntegrity verifies Google Play Integrity tokens offline, with the
// keys the operator downloads from the Play Console (the integrity token
// is a JWE, A256KW + A256GCM, wrapping a JWS, ES256). It implements
// [Verifier] for [FormatPlayIntegrity]. It is safe for concurrent use.
type PlayIntegrity struct {
	pkg       string
	decKey    []byte
	verKey    *ecdsa.PublicKey
	digests   [][]byte
	anyDigest bool
	minDevice DeviceIntegrity
	maxAge    time.Duration
	replay    kv.Store
	now       func() time.Time
}

// playReplayPrefix prefixes the replay keys in the kv.Store.
const playReplayPrefix = "attest/play/"

var _ Verifier = (*PlayIntegrity)(nil)

// NewPlayIntegrity returns a Play Integrity verifier.
func NewPlayIntegrity(cfg PlayIntegrityConfig) (*PlayIntegrity, error) {
	switch {
	case cfg.PackageName == "":
		return nil, errors.New("moat/attest: Play Integrity needs the package name")
	case len(cfg.DecryptionKey) != 32:
		return nil, errors.New("moat/attest: Play Integrity decryption key must be 32 bytes (AES-256)")
	case cfg.VerificationKey == nil || cfg.VerificationKey.Curve != elliptic.P256():
		return nil, errors.New("moat/attest: Play Integrity needs the P-256 verification key")
	case len(cfg.CertificateDigests) == 0 && !cfg.InsecureSkipCertificateDigest:
		return nil, errors.New("moat/attest: Play Integrity needs the signing certificate digests")
	case cfg.Replay == nil:
		return nil, errors.New("moat/attest: Play Integrity needs a kv.Store for replay protection")
	case cfg.MaxAge < 0:
		return nil, errors.New("moat/attest: Play Integrity MaxAge is negative")
	case cfg.MinDeviceIntegrity < DeviceIntegrityDefault || cfg.MinDeviceIntegrity > DeviceIntegrityStrong:
		return nil, errors.New("moat/attest: unknown device integrity level")
	}
	p := &PlayIntegrity{
		pkg: cfg.PackageName, decKey: bytes.Clone(cfg.DecryptionKey), verKey: cfg.VerificationKey,
		anyDigest: cfg.InsecureSkipCertificateDigest, minDevice: cfg.MinDeviceIntegrity,
		maxAge: cfg.MaxAge, replay: cfg.Replay, now: nowFunc(cfg.Now),
	}
	for _, d := range cfg.CertificateDigests {
		if len(d) != sha256.Size {
			return nil, errors.New("moat/attest: a certificate digest is SHA-256 (32 bytes)")
		}
		p.digests = append(p.digests, bytes.Clone(d))
	}
	if p.minDevice == DeviceIntegrityDefault {
		p.minDevice = DeviceIntegrityDevice
	}
	if p.maxAge == 0 {
		p.maxAge = DefaultPlayIntegrityMaxAge
	}
	return p, nil
}

// Format implements [Verifier].
func (p *PlayIntegrity) Format() string { return FormatPlayIntegrity }

// playIntegrityWire is the registration wire object.
type playIntegrityWire struct {
	Format string `json:"format"`
	Token  string `json:"token"`
}

// Verify implements [Verifier]: the token's request hash (standard API)
// or nonce (classic API) must be base64url(ev.Challenge).
func (p *PlayIntegrity) Verify(ctx context.Context, ev *Evidence) (*Result, error) {
	var w playIntegrityWire
	if err := json.Unmarshal(ev.Attestation, &w); err != nil {
		return nil, refuse(ErrMalformed, "Play Integrity wire object: %v", err)
	}
	res, err := p.VerifyToken(ctx, w.Token, ev.Challenge)
	if err != nil {
		return nil, err
	}
	if ev.AppID != "" && ev.AppID != res.AppID {
		return nil, refuse(ErrPackage, "verdict for %q, declared %q", res.AppID, ev.AppID)
	}
	return res, nil
}

// PlayIntegrityVerdict is the decoded payload of an integrity token (the
// members this package reads).
type PlayIntegrityVerdict struct {
	RequestDetails struct {
		RequestPackageName string  `json:"requestPackageName"`
		TimestampMillis    flexInt `json:"timestampMillis"`
		Nonce              string  `json:"nonce"`
		RequestHash        string  `json:"requestHash"`
	} `json:"requestDetails"`
	AppIntegrity struct {
		AppRecognitionVerdict   string   `json:"appRecognitionVerdict"`
		PackageName             string   `json:"packageName"`
		CertificateSha256Digest []string `json:"certificateSha256Digest"`
		VersionCode             flexInt  `json:"versionCode"`
	} `json:"appIntegrity"`
	DeviceIntegrity struct {
		DeviceRecognitionVerdict []string `json:"deviceRecognitionVerdict"`
	} `json:"deviceIntegrity"`
	AccountDetails struct {
		AppLicensingVerdict string `json:"appLicensingVerdict"`
	} `json:"accountDetails"`
}

// flexInt reads a JSON integer written as a number or a decimal string
// (Google writes timestampMillis and versionCode as strings).
type flexInt struct {
	V   int64
	Set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	f.V, f.Set = n, true
	return nil
}

// DecodePlayIntegrityToken decrypts token (compact JWE, A256KW with
// A256GCM only) with decryptionKey and verifies its inner compact JWS
// (ES256 only) with verificationKey. It checks no claim.
func DecodePlayIntegrityToken(token string, decryptionKey []byte, verificationKey *ecdsa.PublicKey) (*PlayIntegrityVerdict, error) {
	if len(token) == 0 || len(token) > maxPlayIntegrityToken {
		return nil, refuse(ErrMalformed, "token of %d bytes", len(token))
	}
	if verificationKey == nil {
		return nil, errors.New("moat/attest: nil verification key")
	}
	jwe, err := jose.ParseEncryptedCompact(strings.TrimSpace(token), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, refuse(ErrMalformed, "integrity token is not an A256KW/A256GCM JWE: %v", err)
	}
	inner, err := jwe.Decrypt(decryptionKey)
	if err != nil {
		return nil, refuse(ErrSignature, "integrity token does not decrypt with the decryption key")
	}
	jws, err := jose.ParseSignedCompact(string(inner), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refuse(ErrMalformed, "integrity token payload is not an ES256 JWS: %v", err)
	}
	payload, err := jws.Verify(verificationKey)
	if err != nil {
		return nil, refuse(ErrSignature, "integrity verdict signature")
	}
	var v PlayIntegrityVerdict
	if err := json.Unmarshal(payload, &v); err != nil {
		return nil, refuse(ErrMalformed, "integrity verdict: %v", err)
	}
	return &v, nil
}

// VerifyToken decrypts and verifies token, then checks:
//
//  1. requestDetails.requestPackageName and appIntegrity.packageName are
//     the configured package;
//  2. requestDetails.requestHash or .nonce decodes (base64/base64url) to
//     binding;
//  3. requestDetails.timestampMillis is at most MaxAge old and at most a
//     minute in the future;
//  4. appIntegrity.appRecognitionVerdict is PLAY_RECOGNIZED;
//  5. one of appIntegrity.certificateSha256Digest is a configured digest;
//  6. appIntegrity.versionCode is present and positive;
//  7. deviceIntegrity.deviceRecognitionVerdict meets the minimum level;
//  8. the request hash or nonce was not accepted before (kept in the
//     Replay store for MaxAge plus a minute).
//
// The returned Result carries the trustworthy versionCode; the minimum
// version is not checked here but by the app-version policy that reads
// it (package device, Client.AttestedVersionCode, in the moat stack).
func (p *PlayIntegrity) VerifyToken(ctx context.Context, token string, binding []byte) (*Result, error) {
	now := p.now()
	if now.IsZero() {
		return nil, errors.New("moat/attest: clock returned the zero time")
	}
	v, err := DecodePlayIntegrityToken(token, p.decKey, p.verKey)
	if err != nil {
		return nil, err
	}
	rd, ai := &v.RequestDetails, &v.AppIntegrity
	if rd.RequestPackageName != p.pkg {
		return nil, refuse(ErrPackage, "verdict requested by %q", rd.RequestPackageName)
	}
	field, value := "request_hash", rd.RequestHash
	if value == "" {
		field, value = "nonce", rd.Nonce
	}
	got, err := decodeB64(value)
	if value == "" || err != nil || len(binding) == 0 || subtle.ConstantTimeCompare(got, binding) != 1 {
		return nil, refuse(ErrChallengeMismatch, "verdict %s differs", field)
	}
	if !rd.TimestampMillis.Set {
		return nil, refuse(ErrMalformed, "verdict has no timestamp")
	}
	ts := time.UnixMilli(rd.TimestampMillis.V)
	if age := now.Sub(ts); age > p.maxAge || age < -playIntegrityFutureSkew {
		return nil, refuse(ErrStale, "verdict from %s at %s", ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if ai.AppRecognitionVerdict != "PLAY_RECOGNIZED" {
		return nil, refuse(ErrAppNotRecognized, "app recognition %q", ai.AppRecognitionVerdict)
	}
	if ai.PackageName != p.pkg {
		return nil, refuse(ErrPackage, "verdict for app %q", ai.PackageName)
	}
	if !p.anyDigest && !p.knownDigest(ai.CertificateSha256Digest) {
		return nil, refuse(ErrPackage, "signing certificate digest not accepted")
	}
	// Play reports the version code with every recognized app; without it
	// the version policy would judge the version the client declares.
	if !ai.VersionCode.Set || ai.VersionCode.V <= 0 {
		return nil, refuse(ErrMalformed, "verdict has no appIntegrity.versionCode")
	}
	level := DeviceIntegrityDefault
	for _, l := range v.DeviceIntegrity.DeviceRecognitionVerdict {
		level = max(level, deviceIntegrityLabels[l])
	}
	if level < p.minDevice {
		return nil, refuse(ErrDeviceIntegrity, "device verdicts %v", v.DeviceIntegrity.DeviceRecognitionVerdict)
	}
	sum := sha256.Sum256(got)
	key := playReplayPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
	if _, err := p.replay.CompareAndSet(ctx, key, []byte{1}, p.maxAge+playIntegrityFutureSkew, 0); err != nil {
		if errors.Is(err, kv.ErrConflict) {
			return nil, refuse(ErrReplay, "%s already used", field)
		}
		return nil, fmt.Errorf("moat/attest: recording Play Integrity %s: %w", field, err)
	}
	return &Result{
		Format: FormatPlayIntegrity, Verdict: VerdictVerified, AppID: ai.PackageName,
		VersionCode: ai.VersionCode.V, VerifiedAt: now,
		Claims: map[string]string{
			"app_recognition":    ai.AppRecognitionVerdict,
			"device_recognition": strings.Join(v.DeviceIntegrity.DeviceRecognitionVerdict, ","),
			"licensing":          v.AccountDetails.AppLicensingVerdict,
			"certificate_sha256": strings.Join(ai.CertificateSha256Digest, ","),
			"binding":            field,
			"verdict_time":       ts.UTC().Format(time.RFC3339Nano),
		},
	}, nil
}

func (p *PlayIntegrity) knownDigest(reported []string) bool {
	for _, s := range reported {
		d, err := decodeB64(s)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(p.digests, func(w []byte) bool { return bytes.Equal(w, d) }) {
			return true
		}
	}
	return false
}
