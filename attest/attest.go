package attest

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"time"
)

// Format names, as they appear in the "format" member of the wire object.
const (
	FormatAppleAppAttest      = "apple-appattest"
	FormatAndroidKey          = "android-key"
	FormatPlayIntegrity       = "play-integrity"
	FormatInsecureDevelopment = "insecure-development"
)

// Verifier checks one attestation format. Implementations in this package:
// [*AppAttest], [*AndroidKey], [*PlayIntegrity] and
// [*InsecureDevelopmentVerifier].
type Verifier interface {
	// Format is the wire format name the verifier accepts.
	Format() string
	// Verify checks ev. It returns a *Result when the evidence is
	// accepted, an [*Error] when it is refused, and any other error when it
	// could not decide (store failure, cancelled context).
	Verify(ctx context.Context, ev *Evidence) (*Result, error)
}

// Evidence is what a [Verifier] is given: the client's attestation object
// and what it must be bound to.
type Evidence struct {
	// Attestation is the wire object as the client sent it (JSON, with a
	// "format" member; see the package documentation).
	Attestation json.RawMessage
	// Challenge is the 32-byte value the attestation must commit to,
	// normally [Challenge](nonce, keyThumbprint).
	Challenge []byte
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of the
	// key the client registers.
	KeyThumbprint string
	// AppID is the app id the client declared (Apple TEAM.BUNDLE, Android
	// package name). Platform verifiers check the attested identity
	// against their own configuration, and also against this when it is
	// not empty; the development verifier attests no app and ignores it.
	AppID string
}

// Environment is the App Attest environment an attestation comes from.
type Environment string

// App Attest environments.
const (
	Production  Environment = "production"
	Development Environment = "development"
)

// SecurityLevel is where an attested key lives.
type SecurityLevel int

// Security levels, weakest first. SecurityUnknown is not a level: it means
// "not reported" in a [Result] and "the default (TEE)" in a config.
const (
	SecurityUnknown SecurityLevel = iota
	SecuritySoftware
	SecurityTEE
	SecurityStrongBox
)

func (l SecurityLevel) String() string {
	switch l {
	case SecuritySoftware:
		return "software"
	case SecurityTEE:
		return "tee"
	case SecurityStrongBox:
		return "strongbox"
	}
	return "unknown"
}

// ParseSecurityLevel parses "software", "tee" or "strongbox".
func ParseSecurityLevel(s string) (SecurityLevel, bool) {
	for _, l := range []SecurityLevel{SecuritySoftware, SecurityTEE, SecurityStrongBox} {
		if l.String() == s {
			return l, true
		}
	}
	return SecurityUnknown, false
}

// Verdict says how a registration's attestation was judged.
type Verdict string

// Verdicts.
const (
	// VerdictVerified: a platform attestation was verified.
	VerdictVerified Verdict = "verified"
	// VerdictInsecure: the INSECURE development verifier accepted the
	// evidence. It proves possession of the client key, not a genuine app.
	VerdictInsecure Verdict = "insecure-development"
	// VerdictAbsent: none was sent and the policy made it optional.
	VerdictAbsent Verdict = "absent"
	// VerdictOff: the policy does not ask for attestation for this app
	// and platform; anything sent was ignored.
	VerdictOff Verdict = "off"
)

// Result is an accepted attestation's facts. Fields a format does not
// report are zero.
type Result struct {
	// Format is the wire format that was verified ("" for VerdictAbsent
	// and VerdictOff).
	Format string
	// Verdict says how the registration's attestation was judged.
	Verdict Verdict
	// Environment is the App Attest environment.
	Environment Environment
	// SecurityLevel is where an Android key lives.
	SecurityLevel SecurityLevel
	// AppID is the attested app identity: the Apple app id, the Android
	// package name. Empty for the development verifier, which attests none.
	AppID string
	// VersionCode is the app's version code as attested by the platform
	// (Play Integrity appIntegrity.versionCode, Android Key Attestation
	// attestationApplicationId), 0 when not reported. Unlike the version
	// the client declares, it is trustworthy.
	VersionCode int64
	// KeyID is the App Attest key id.
	KeyID []byte
	// PublicKey is the attested key (App Attest, Android key, development).
	PublicKey crypto.PublicKey
	// Counter is the App Attest counter (0 after an attestation).
	Counter uint32
	// Receipt is the App Attest receipt, kept for fraud-metric requests.
	Receipt []byte
	// Claims holds the platform's other claims, flattened to strings
	// (verified_boot_state, device_locked, device_recognition, ...).
	Claims map[string]string
	// VerifiedAt is the time the verification was done at.
	VerifiedAt time.Time
}

// Insecure reports whether the result comes from the INSECURE development
// verifier.
func (r *Result) Insecure() bool { return r != nil && r.Verdict == VerdictInsecure }

// Facts flattens the result for storing on the registered client and for
// analytics: verdict, format, environment, security_level, app_id,
// version_code, key_id (base64), counter and the claims. Keys with empty
// values are left out. An insecure result has insecure=true.
func (r *Result) Facts() map[string]string {
	if r == nil {
		return nil
	}
	f := make(map[string]string, 8+len(r.Claims))
	for k, v := range r.Claims {
		f[k] = v
	}
	put := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	put("verdict", string(r.Verdict))
	put("format", r.Format)
	put("environment", string(r.Environment))
	if r.SecurityLevel != SecurityUnknown {
		put("security_level", r.SecurityLevel.String())
	}
	put("app_id", r.AppID)
	if r.VersionCode != 0 {
		put("version_code", strconv.FormatInt(r.VersionCode, 10))
	}
	if len(r.KeyID) > 0 {
		put("key_id", base64.StdEncoding.EncodeToString(r.KeyID))
	}
	if r.Format == FormatAppleAppAttest {
		put("counter", strconv.FormatUint(uint64(r.Counter), 10))
	}
	if r.Insecure() {
		f["insecure"] = "true"
	}
	return f
}

// PublicKeyPEM returns the attested public key as a PEM "PUBLIC KEY"
// block, or "" when the result has none.
func (r *Result) PublicKeyPEM() string {
	if r == nil || r.PublicKey == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(r.PublicKey)
	if err != nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// nowFunc returns f or time.Now.
func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}
