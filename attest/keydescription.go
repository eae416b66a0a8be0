package attest

import (
	"encoding/asn1"
	"fmt"
)

// oidKeyDescription is the Android Key Attestation extension.
var oidKeyDescription = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 1, 17}

// maxKeyDescription bounds the extension's size.
const maxKeyDescription = 32 << 10

// VerifiedBootState is the Android verified boot state of the device.
type VerifiedBootState int

// Verified boot states, as numbered in the KeyDescription schema.
const (
	BootVerified   VerifiedBootState = 0
	BootSelfSigned VerifiedBootState = 1
	BootUnverified VerifiedBootState = 2
	BootFailed     VerifiedBootState = 3
)

func (s VerifiedBootState) String() string {
	switch s {
	case BootVerified:
		return "VERIFIED"
	case BootSelfSigned:
		return "SELF_SIGNED"
	case BootUnverified:
		return "UNVERIFIED"
	case BootFailed:
		return "FAILED"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int(s))
}

// KeyDescription is the parsed Android Key Attestation extension
// (OID 1.3.6.1.4.1.11129.2.1.17) of an attested key's certificate. Field
// names follow Android's schema (keyMint* was keymaster* before version 100).
type KeyDescription struct {
	AttestationVersion       int64
	AttestationSecurityLevel SecurityLevel
	KeyMintVersion           int64
	KeyMintSecurityLevel     SecurityLevel
	AttestationChallenge     []byte
	UniqueID                 []byte
	SoftwareEnforced         AuthorizationList
	HardwareEnforced         AuthorizationList
}

// AuthorizationList holds the authorizations this package reads; other
// tags are accepted and listed in Tags only. Absent integer fields are -1.
type AuthorizationList struct {
	// Tags lists every tag present, in (strictly ascending) order.
	Tags []int
	// Purposes, Algorithm, KeySize, Digests, ECCurve and Origin describe
	// the key (Keymaster tag values).
	Purposes  []int64
	Algorithm int64
	KeySize   int64
	Digests   []int64
	ECCurve   int64
	Origin    int64
	// NoAuthRequired and AllApplications are NULL-valued flags.
	NoAuthRequired  bool
	AllApplications bool
	// CreationDateTime is milliseconds since the epoch.
	CreationDateTime int64
	// RootOfTrust is the device's boot state (hardware-enforced).
	RootOfTrust *RootOfTrust
	// OSVersion, OSPatchLevel, VendorPatchLevel, BootPatchLevel are the
	// device's versions as Android encodes them (140000, 202408, ...).
	OSVersion        int64
	OSPatchLevel     int64
	VendorPatchLevel int64
	BootPatchLevel   int64
	// AttestationApplicationID names the app that asked for the key.
	AttestationApplicationID *AttestationApplicationID
}

// RootOfTrust is the device's verified boot information.
type RootOfTrust struct {
	VerifiedBootKey   []byte
	DeviceLocked      bool
	VerifiedBootState VerifiedBootState
	VerifiedBootHash  []byte
}

// AttestationApplicationID lists the packages sharing the app's uid and
// the SHA-256 digests of their signing certificates.
type AttestationApplicationID struct {
	Packages         []PackageInfo
	SignatureDigests [][]byte
}

// PackageInfo is one package of an [AttestationApplicationID].
type PackageInfo struct {
	Name    string
	Version int64
}

type keyDescriptionASN1 struct {
	AttestationVersion       int64
	AttestationSecurityLevel asn1.Enumerated
	KeyMintVersion           int64
	KeyMintSecurityLevel     asn1.Enumerated
	AttestationChallenge     []byte
	UniqueID                 []byte
	SoftwareEnforced         asn1.RawValue
	HardwareEnforced         asn1.RawValue
}

type rootOfTrustASN1 struct {
	VerifiedBootKey   []byte
	DeviceLocked      bool
	VerifiedBootState asn1.Enumerated
	VerifiedBootHash  []byte `asn1:"optional"`
}

type attestationApplicationIDASN1 struct {
	Packages         []packageInfoASN1 `asn1:"set"`
	SignatureDigests [][]byte          `asn1:"set"`
}

type packageInfoASN1 struct {
	Name    []byte
	Version int64
}

// ParseKeyDescription parses the DER value of the KeyDescription
// extension. It is strict: trailing data, authorization tags out of
// ascending order or repeated, an unknown security level, and malformed
// values of the tags it reads are errors ([ErrMalformed]).
func ParseKeyDescription(der []byte) (*KeyDescription, error) {
	if len(der) == 0 || len(der) > maxKeyDescription {
		return nil, refuse(ErrMalformed, "key description of %d bytes", len(der))
	}
	var raw keyDescriptionASN1
	rest, err := asn1.Unmarshal(der, &raw)
	if err != nil {
		return nil, refuse(ErrMalformed, "key description: %v", err)
	}
	if len(rest) != 0 {
		return nil, refuse(ErrMalformed, "key description: trailing data")
	}
	kd := &KeyDescription{
		AttestationVersion: raw.AttestationVersion, KeyMintVersion: raw.KeyMintVersion,
		AttestationChallenge: raw.AttestationChallenge, UniqueID: raw.UniqueID,
	}
	if kd.AttestationSecurityLevel, err = securityLevelFromASN1(raw.AttestationSecurityLevel); err != nil {
		return nil, err
	}
	if kd.KeyMintSecurityLevel, err = securityLevelFromASN1(raw.KeyMintSecurityLevel); err != nil {
		return nil, err
	}
	if err := parseAuthorizationList(raw.SoftwareEnforced, &kd.SoftwareEnforced); err != nil {
		return nil, err
	}
	if err := parseAuthorizationList(raw.HardwareEnforced, &kd.HardwareEnforced); err != nil {
		return nil, err
	}
	return kd, nil
}

func securityLevelFromASN1(e asn1.Enumerated) (SecurityLevel, error) {
	switch e {
	case 0:
		return SecuritySoftware, nil
	case 1:
		return SecurityTEE, nil
	case 2:
		return SecurityStrongBox, nil
	}
	return SecurityUnknown, refuse(ErrMalformed, "unknown security level %d", int(e))
}

// Authorization tags this package reads (Keymaster tag numbers without
// their type bits).
const (
	tagPurpose                  = 1
	tagAlgorithm                = 2
	tagKeySize                  = 3
	tagDigest                   = 5
	tagECCurve                  = 10
	tagNoAuthRequired           = 503
	tagAllApplications          = 600
	tagCreationDateTime         = 701
	tagOrigin                   = 702
	tagRootOfTrust              = 704
	tagOSVersion                = 705
	tagOSPatchLevel             = 706
	tagAttestationApplicationID = 709
	tagVendorPatchLevel         = 718
	tagBootPatchLevel           = 719
)

func parseAuthorizationList(rv asn1.RawValue, al *AuthorizationList) error {
	if rv.Class != asn1.ClassUniversal || rv.Tag != asn1.TagSequence || !rv.IsCompound {
		return refuse(ErrMalformed, "authorization list is not a SEQUENCE")
	}
	*al = AuthorizationList{
		Algorithm: -1, KeySize: -1, ECCurve: -1, Origin: -1, CreationDateTime: -1,
		OSVersion: -1, OSPatchLevel: -1, VendorPatchLevel: -1, BootPatchLevel: -1,
	}
	data := rv.Bytes
	last := -1
	for len(data) > 0 {
		var f asn1.RawValue
		var err error
		data, err = asn1.Unmarshal(data, &f)
		if err != nil {
			return refuse(ErrMalformed, "authorization list: %v", err)
		}
		if f.Class != asn1.ClassContextSpecific || !f.IsCompound {
			return refuse(ErrMalformed, "authorization list entry is not an explicit tag")
		}
		if f.Tag <= last {
			return refuse(ErrMalformed, "authorization list tags must be in ascending order (tag %d after %d)", f.Tag, last)
		}
		last = f.Tag
		al.Tags = append(al.Tags, f.Tag)
		if err := parseAuthorization(f.Tag, f.Bytes, al); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalExact parses b into v, with no data left over.
func unmarshalExact(b []byte, v any, params string, tag int) error {
	rest, err := asn1.UnmarshalWithParams(b, v, params)
	if err != nil {
		return refuse(ErrMalformed, "authorization tag %d: %v", tag, err)
	}
	if len(rest) != 0 {
		return refuse(ErrMalformed, "authorization tag %d: trailing data", tag)
	}
	return nil
}

func parseAuthorization(tag int, b []byte, al *AuthorizationList) error {
	var ints = map[int]*int64{
		tagAlgorithm: &al.Algorithm, tagKeySize: &al.KeySize, tagECCurve: &al.ECCurve,
		tagCreationDateTime: &al.CreationDateTime, tagOrigin: &al.Origin,
		tagOSVersion: &al.OSVersion, tagOSPatchLevel: &al.OSPatchLevel,
		tagVendorPatchLevel: &al.VendorPatchLevel, tagBootPatchLevel: &al.BootPatchLevel,
	}
	if p, ok := ints[tag]; ok {
		return unmarshalExact(b, p, "", tag)
	}
	switch tag {
	case tagPurpose:
		return unmarshalExact(b, &al.Purposes, "set", tag)
	case tagDigest:
		return unmarshalExact(b, &al.Digests, "set", tag)
	case tagNoAuthRequired, tagAllApplications:
		var n asn1.RawValue
		if err := unmarshalExact(b, &n, "", tag); err != nil {
			return err
		}
		if n.Tag != asn1.TagNull || len(n.Bytes) != 0 {
			return refuse(ErrMalformed, "authorization tag %d is not NULL", tag)
		}
		if tag == tagNoAuthRequired {
			al.NoAuthRequired = true
		} else {
			al.AllApplications = true
		}
	case tagRootOfTrust:
		var r rootOfTrustASN1
		if err := unmarshalExact(b, &r, "", tag); err != nil {
			return err
		}
		al.RootOfTrust = &RootOfTrust{
			VerifiedBootKey: r.VerifiedBootKey, DeviceLocked: r.DeviceLocked,
			VerifiedBootState: VerifiedBootState(r.VerifiedBootState), VerifiedBootHash: r.VerifiedBootHash,
		}
	case tagAttestationApplicationID:
		var os []byte
		if err := unmarshalExact(b, &os, "", tag); err != nil {
			return err
		}
		var a attestationApplicationIDASN1
		if err := unmarshalExact(os, &a, "", tag); err != nil {
			return err
		}
		id := &AttestationApplicationID{SignatureDigests: a.SignatureDigests}
		for _, p := range a.Packages {
			id.Packages = append(id.Packages, PackageInfo{Name: string(p.Name), Version: p.Version})
		}
		al.AttestationApplicationID = id
	}
	return nil
}

// applicationID returns the attestation application id from either list
// (software-enforced before KeyMint 4, hardware-enforced on some devices).
func (kd *KeyDescription) applicationID() *AttestationApplicationID {
	if kd.HardwareEnforced.AttestationApplicationID != nil {
		return kd.HardwareEnforced.AttestationApplicationID
	}
	return kd.SoftwareEnforced.AttestationApplicationID
}

// RootOfTrust returns the hardware-enforced root of trust, or nil.
func (kd *KeyDescription) RootOfTrust() *RootOfTrust {
	return kd.HardwareEnforced.RootOfTrust
}

// Packages returns the attested package names, or nil.
func (kd *KeyDescription) Packages() []PackageInfo {
	if id := kd.applicationID(); id != nil {
		return id.Packages
	}
	return nil
}
