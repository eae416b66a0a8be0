package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxChainLen bounds the number of certificates in an Android chain.
const maxChainLen = 10

// AndroidPackage is an app accepted by [AndroidKey].
type AndroidPackage struct {
	// Name is the package name ("com.example.app"). Required.
	Name string
	// SignatureDigests are SHA-256 digests of the app's signing
	// certificates (apksigner's "SHA-256 digest"). Required: at least one
	// of the attested digests must be listed.
	SignatureDigests [][]byte
}

// AndroidKeyConfig configures [NewAndroidKey].
type AndroidKeyConfig struct {
	// Roots are the trusted roots, matched by public key. Required: use
	// [GoogleAttestationRoots].
	Roots []*x509.Certificate
	// Packages lists the accepted apps. Required.
	Packages []AndroidPackage
	// Revocations is Google's status list, loaded from a file. Required:
	// see [LoadRevocationList] and [RefreshRevocationFile].
	Revocations *RevocationList
	// MinSecurityLevel is the lowest accepted security level of the
	// attestation and of the key. Zero means SecurityTEE; SecurityStrongBox
	// demands a StrongBox. SecuritySoftware accepts software keystores,
	// which prove nothing about the device (their roots are not Google's
	// hardware roots, so they also need those roots in Roots).
	MinSecurityLevel SecurityLevel
	// InsecureAllowUnverifiedBoot accepts devices whose verified boot
	// state is not VERIFIED or whose bootloader is unlocked (test devices,
	// custom ROMs, rooted phones). False (the default) refuses them.
	InsecureAllowUnverifiedBoot bool
	// Now returns the verification time. Nil means time.Now.
	Now func() time.Time
}

// AndroidKey verifies Android Key Attestation certificate chains. It
// implements [Verifier] for [FormatAndroidKey]. It is safe for concurrent
// use.
type AndroidKey struct {
	roots    []*x509.Certificate
	packages map[string]AndroidPackage
	revs     *RevocationList
	minLevel SecurityLevel
	insecure bool
	now      func() time.Time
}

var _ Verifier = (*AndroidKey)(nil)

// NewAndroidKey returns an Android Key Attestation verifier.
func NewAndroidKey(cfg AndroidKeyConfig) (*AndroidKey, error) {
	if len(cfg.Roots) == 0 {
		return nil, errors.New("moat/attest: Android Key Attestation needs trusted roots (GoogleAttestationRoots)")
	}
	if len(cfg.Packages) == 0 {
		return nil, errors.New("moat/attest: Android Key Attestation needs the accepted packages")
	}
	if cfg.Revocations == nil {
		return nil, errors.New("moat/attest: Android Key Attestation needs a revocation list")
	}
	a := &AndroidKey{
		roots: cfg.Roots, packages: make(map[string]AndroidPackage), revs: cfg.Revocations,
		minLevel: cfg.MinSecurityLevel, insecure: cfg.InsecureAllowUnverifiedBoot, now: nowFunc(cfg.Now),
	}
	if a.minLevel == SecurityUnknown {
		a.minLevel = SecurityTEE
	}
	if a.minLevel > SecurityStrongBox {
		return nil, fmt.Errorf("moat/attest: unknown security level %d", cfg.MinSecurityLevel)
	}
	for _, r := range cfg.Roots {
		if r == nil {
			return nil, errors.New("moat/attest: nil root certificate")
		}
	}
	for _, p := range cfg.Packages {
		if p.Name == "" || len(p.SignatureDigests) == 0 {
			return nil, errors.New("moat/attest: an Android package needs a name and signing certificate digests")
		}
		for _, d := range p.SignatureDigests {
			if len(d) != 32 {
				return nil, fmt.Errorf("moat/attest: package %s: a signature digest is SHA-256 (32 bytes)", p.Name)
			}
		}
		a.packages[p.Name] = p
	}
	return a, nil
}

// Format implements [Verifier].
func (a *AndroidKey) Format() string { return FormatAndroidKey }

// androidKeyWire is the registration wire object.
type androidKeyWire struct {
	Format string   `json:"format"`
	Chain  []string `json:"chain"`
}

// Verify implements [Verifier]: ev.Attestation carries the certificate
// chain of a key generated with setAttestationChallenge(ev.Challenge).
func (a *AndroidKey) Verify(_ context.Context, ev *Evidence) (*Result, error) {
	var w androidKeyWire
	if err := json.Unmarshal(ev.Attestation, &w); err != nil {
		return nil, refuse(ErrMalformed, "Android key wire object: %v", err)
	}
	if len(w.Chain) == 0 || len(w.Chain) > maxChainLen {
		return nil, refuse(ErrMalformed, "chain of %d certificates", len(w.Chain))
	}
	chain := make([]*x509.Certificate, len(w.Chain))
	for i, s := range w.Chain {
		der, err := decodeB64(s)
		if err != nil {
			return nil, refuse(ErrMalformed, "chain[%d] is not base64", i)
		}
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, refuse(ErrMalformed, "chain[%d]: %v", i, err)
		}
	}
	res, err := a.VerifyChain(chain, ev.Challenge)
	if err != nil {
		return nil, err
	}
	if ev.AppID != "" && ev.AppID != res.AppID {
		return nil, refuse(ErrPackage, "attested package %q, declared %q", res.AppID, ev.AppID)
	}
	if ev.KeyThumbprint != "" {
		jkt, err := thumbprint(res.PublicKey)
		res.Claims["attested_key_is_client_key"] = strconv.FormatBool(err == nil && jkt == ev.KeyThumbprint)
	}
	return res, nil
}

// VerifyChain checks chain (leaf first) against challenge and the
// verifier's policy:
//
//  1. the chain verifies ([VerifyAndroidKeyChain]: signatures, issuer
//     names, validity at the verification time, a trusted root, no
//     revoked certificate);
//  2. the attestation challenge equals challenge;
//  3. attestation and KeyMint security levels are at least the minimum;
//  4. the hardware-enforced root of trust says VERIFIED boot and a locked
//     device (unless InsecureAllowUnverifiedBoot);
//  5. the attestation application id names an accepted package with an
//     accepted signing certificate digest.
func (a *AndroidKey) VerifyChain(chain []*x509.Certificate, challenge []byte) (*Result, error) {
	now := a.now()
	kd, err := VerifyAndroidKeyChain(chain, a.roots, a.revs, now)
	if err != nil {
		return nil, err
	}
	err = CheckKeyDescription(kd, KeyDescriptionPolicy{
		Challenge: challenge, MinSecurityLevel: a.minLevel, InsecureAllowUnverifiedBoot: a.insecure,
	})
	if err != nil {
		return nil, err
	}
	pkg, version, err := a.matchPackage(kd)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Format: FormatAndroidKey, Verdict: VerdictVerified, SecurityLevel: kd.AttestationSecurityLevel,
		AppID: pkg, VersionCode: version, PublicKey: chain[0].PublicKey, VerifiedAt: now,
		Claims: androidClaims(kd),
	}
	return res, nil
}

func (a *AndroidKey) matchPackage(kd *KeyDescription) (string, int64, error) {
	id := kd.applicationID()
	if id == nil {
		return "", 0, refuse(ErrPackage, "no attestation application id")
	}
	for _, p := range id.Packages {
		want, ok := a.packages[p.Name]
		if !ok {
			continue
		}
		for _, got := range id.SignatureDigests {
			for _, d := range want.SignatureDigests {
				if bytes.Equal(got, d) {
					return p.Name, p.Version, nil
				}
			}
		}
		return "", 0, refuse(ErrPackage, "package %s signed with an unknown certificate", p.Name)
	}
	return "", 0, refuse(ErrPackage, "no accepted package among %d attested", len(id.Packages))
}

func androidClaims(kd *KeyDescription) map[string]string {
	c := map[string]string{
		"attestation_version":        strconv.FormatInt(kd.AttestationVersion, 10),
		"attestation_security_level": kd.AttestationSecurityLevel.String(),
		"keymint_version":            strconv.FormatInt(kd.KeyMintVersion, 10),
		"keymint_security_level":     kd.KeyMintSecurityLevel.String(),
	}
	if rot := kd.RootOfTrust(); rot != nil {
		c["verified_boot_state"] = rot.VerifiedBootState.String()
		c["device_locked"] = strconv.FormatBool(rot.DeviceLocked)
	}
	hw := kd.HardwareEnforced
	for k, v := range map[string]int64{
		"os_version": hw.OSVersion, "os_patch_level": hw.OSPatchLevel,
		"vendor_patch_level": hw.VendorPatchLevel, "boot_patch_level": hw.BootPatchLevel,
	} {
		if v >= 0 {
			c[k] = strconv.FormatInt(v, 10)
		}
	}
	return c
}

// KeyDescriptionPolicy is what [CheckKeyDescription] requires of a
// verified chain's KeyDescription.
type KeyDescriptionPolicy struct {
	// Challenge is the expected attestation challenge. Required.
	Challenge []byte
	// MinSecurityLevel: zero means SecurityTEE.
	MinSecurityLevel SecurityLevel
	// Package, when not empty, must be one of the attested package names.
	// Only the name is compared: [AndroidKey] also checks signing digests.
	Package string
	// InsecureAllowUnverifiedBoot accepts an unverified boot state or an
	// unlocked bootloader. False (the default) refuses them.
	InsecureAllowUnverifiedBoot bool
}

// CheckKeyDescription checks kd's challenge (constant time), attestation
// and KeyMint security levels, hardware-enforced root of trust and,
// optionally, package name against p.
func CheckKeyDescription(kd *KeyDescription, p KeyDescriptionPolicy) error {
	minLevel := p.MinSecurityLevel
	if minLevel == SecurityUnknown {
		minLevel = SecurityTEE
	}
	if len(p.Challenge) == 0 || subtle.ConstantTimeCompare(kd.AttestationChallenge, p.Challenge) != 1 {
		return refuse(ErrChallengeMismatch, "attestation challenge differs")
	}
	if kd.AttestationSecurityLevel < minLevel || kd.KeyMintSecurityLevel < minLevel {
		return refuse(ErrSecurityLevel, "attestation %s, key %s, minimum %s",
			kd.AttestationSecurityLevel, kd.KeyMintSecurityLevel, minLevel)
	}
	if !p.InsecureAllowUnverifiedBoot {
		rot := kd.RootOfTrust()
		if rot == nil {
			return refuse(ErrRootOfTrust, "no hardware-enforced root of trust")
		}
		if rot.VerifiedBootState != BootVerified || !rot.DeviceLocked {
			return refuse(ErrRootOfTrust, "verified boot %s, device locked %t", rot.VerifiedBootState, rot.DeviceLocked)
		}
	}
	if p.Package != "" && !slices.ContainsFunc(kd.Packages(), func(pi PackageInfo) bool { return pi.Name == p.Package }) {
		return refuse(ErrPackage, "package %q not attested", p.Package)
	}
	return nil
}

// VerifyAndroidKeyChain checks an Android Key Attestation chain (leaf
// first) at the given time and returns the leaf's parsed KeyDescription:
//
//   - every certificate's issuer name equals the next one's subject, and
//     its signature verifies with the next one's key (which must be a CA);
//   - every certificate is valid at time at;
//   - the last certificate has the public key of one of roots, or is
//     signed by one of them;
//   - no certificate's serial number is in revocations (which must not
//     be nil; an empty list checks nothing, knowingly);
//   - the leaf carries exactly one KeyDescription extension, and it parses.
//
// It checks no policy (challenge, security level, boot state, package):
// [AndroidKey.VerifyChain] does.
func VerifyAndroidKeyChain(chain []*x509.Certificate, roots []*x509.Certificate, revocations *RevocationList, at time.Time) (*KeyDescription, error) {
	if revocations == nil {
		return nil, errors.New("moat/attest: VerifyAndroidKeyChain needs a revocation list")
	}
	if at.IsZero() {
		return nil, errors.New("moat/attest: verification time is zero")
	}
	if len(chain) < 2 || len(chain) > maxChainLen {
		return nil, refuse(ErrChain, "chain of %d certificates", len(chain))
	}
	// Signatures and names first: a forged chain is reported as such, not
	// as expired.
	if err := verifyLinks(chain); err != nil {
		return nil, err
	}
	if err := anchorChain(chain[len(chain)-1], roots, at); err != nil {
		return nil, err
	}
	if err := checkValidity(chain, at); err != nil {
		return nil, err
	}
	for i, c := range chain {
		if e, ok := revocations.Lookup(c.SerialNumber); ok {
			return nil, refuse(ErrRevoked, "certificate %d serial %s: %s %s", i, c.SerialNumber.Text(16), e.Status, e.Reason)
		}
	}
	var ext []byte
	for _, e := range chain[0].Extensions {
		if e.Id.Equal(oidKeyDescription) {
			if ext != nil {
				return nil, refuse(ErrMalformed, "key description extension appears twice")
			}
			ext = e.Value
		}
	}
	if ext == nil {
		return nil, refuse(ErrMalformed, "leaf has no key description extension")
	}
	return ParseKeyDescription(ext)
}

// anchorChain checks that last is a trusted root (same public key) or is
// signed by one that is valid at at.
func anchorChain(last *x509.Certificate, roots []*x509.Certificate, at time.Time) error {
	for _, r := range roots {
		if bytes.Equal(last.RawSubjectPublicKeyInfo, r.RawSubjectPublicKeyInfo) {
			return nil
		}
	}
	for _, r := range roots {
		if bytes.Equal(last.RawIssuer, r.RawSubject) && last.CheckSignatureFrom(r) == nil {
			if at.Before(r.NotBefore) || at.After(r.NotAfter) {
				return refuse(ErrCertificateExpired, "root %s not valid at %s", r.Subject, at.UTC().Format(time.RFC3339))
			}
			return nil
		}
	}
	return refuse(ErrUnknownRoot, "chain ends at %q", last.Subject)
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
