package update

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

const (
	manifestType     = "moat.update.manifest.v1"
	maxManifestBytes = 32 << 20
)

// Manifest describes one bundle version of an app's web resources.
type Manifest struct {
	// AppID is the app's identifier (bundle id or package name): 1 to 128
	// bytes of letters, digits, '.', '_' and '-', not starting with '.'.
	AppID string
	// Platform is the platform name, such as "ios" or "android": 1 to 32
	// bytes of lowercase letters, digits, '_' and '-'.
	Platform string
	// AppVersions is the range of native app versions the bundle is for,
	// such as ">=2.1 <3" or "*"; see the package documentation.
	AppVersions string
	// BundleVersion is 1 or more, and grows with every release.
	BundleVersion uint64
	// Created and Expires are truncated to the second. Clients refuse the
	// manifest from Expires on.
	Created, Expires time.Time
	// Mandatory asks servers to refuse protected calls from clients that
	// have not installed this version or a later one.
	Mandatory bool
	// Files lists every file of the bundle, sorted by path.
	Files []File

	signed []byte
}

// File is one file of a bundle.
type File struct {
	// Path is "/"-separated and relative; see the package documentation
	// for the allowed characters.
	Path   string
	Size   int64
	SHA256 [32]byte
}

// Signed returns the signed manifest document this manifest was verified
// from (nil for a manifest built in memory).
func (m *Manifest) Signed() []byte { return append([]byte(nil), m.signed...) }

// TotalSize returns the sum of the file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

type manifestPayload struct {
	Type          string         `json:"type"`
	AppID         string         `json:"app_id"`
	Platform      string         `json:"platform"`
	AppVersions   string         `json:"app_versions"`
	BundleVersion uint64         `json:"bundle_version"`
	Created       int64          `json:"created"`
	Expires       int64          `json:"expires"`
	Mandatory     bool           `json:"mandatory"`
	Files         []manifestFile `json:"files"`
}

type manifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var manifestMembers = []string{"type", "app_id", "platform", "app_versions", "bundle_version", "created", "expires", "mandatory", "files"}

// SignManifest checks m and signs it with signers (a threshold of the
// root's manifest keys). Created and Expires are truncated to the second.
func SignManifest(m Manifest, signers ...crypto.Signer) ([]byte, error) {
	p := manifestPayload{Type: manifestType, AppID: m.AppID, Platform: m.Platform, AppVersions: m.AppVersions,
		BundleVersion: m.BundleVersion, Created: m.Created.Unix(), Expires: m.Expires.Unix(), Mandatory: m.Mandatory,
		Files: make([]manifestFile, len(m.Files))}
	for i, f := range m.Files {
		p.Files[i] = manifestFile{Path: f.Path, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256[:])}
	}
	if _, err := p.decode(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return signEnvelope(b, typManifest, signers)
}

// decodeManifestPayload parses and checks a manifest payload.
func decodeManifestPayload(b []byte) (*Manifest, error) {
	var p manifestPayload
	if err := decodeStrict(b, &p, manifestMembers...); err != nil {
		return nil, err
	}
	return p.decode()
}

// readManifestUnverified returns the content of a signed manifest without
// checking signatures or expiry: only for manifests read back from the
// publisher's own store or the client's own installation.
func readManifestUnverified(signed []byte) (*Manifest, error) {
	if len(signed) > maxManifestBytes {
		return nil, fmt.Errorf("%w: manifest over %d bytes", ErrTooLarge, maxManifestBytes)
	}
	b, err := unverifiedPayload(signed)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifestPayload(b)
	if err != nil {
		return nil, err
	}
	m.signed = append([]byte(nil), signed...)
	return m, nil
}

func (p *manifestPayload) decode() (*Manifest, error) {
	if p.Type != manifestType {
		return nil, malformed("not a %s document", manifestType)
	}
	if !validAppID(p.AppID) {
		return nil, malformed("app_id must be 1 to 128 bytes of letters, digits, '.', '_', '-'")
	}
	if !validPlatform(p.Platform) {
		return nil, malformed("platform must be 1 to 32 bytes of lowercase letters, digits, '_', '-'")
	}
	if _, ok := parseRange(p.AppVersions); !ok {
		return nil, malformed("app_versions is not a version range")
	}
	if p.BundleVersion < 1 || p.BundleVersion > maxSafeInt {
		return nil, malformed("bundle_version must be 1 to 2^53-1")
	}
	if p.Created <= 0 || p.Expires <= p.Created || p.Expires > maxSafeInt {
		return nil, malformed("created and expires must be positive with expires after created")
	}
	if len(p.Files) > maxFiles {
		return nil, fmt.Errorf("%w: more than %d files", ErrTooLarge, maxFiles)
	}
	m := &Manifest{AppID: p.AppID, Platform: p.Platform, AppVersions: p.AppVersions, BundleVersion: p.BundleVersion,
		Created: time.Unix(p.Created, 0).UTC(), Expires: time.Unix(p.Expires, 0).UTC(), Mandatory: p.Mandatory,
		Files: make([]File, len(p.Files))}
	paths := make([]string, len(p.Files))
	var total int64
	for i, f := range p.Files {
		if f.Size < 0 || f.Size > maxSafeInt-total {
			return nil, malformed("file sizes are out of range")
		}
		total += f.Size
		if len(f.SHA256) != 64 || hex.EncodeToString(mustHex(f.SHA256)) != f.SHA256 {
			return nil, malformed("sha256 must be 64 lowercase hex digits")
		}
		m.Files[i] = File{Path: f.Path, Size: f.Size}
		copy(m.Files[i].SHA256[:], mustHex(f.SHA256))
		paths[i] = f.Path
	}
	if err := checkPathSet(paths); err != nil {
		return nil, err
	}
	return m, nil
}

// mustHex decodes hex, returning nil on error.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// CheckChannel returns an error wrapping [ErrMalformed] unless app and
// platform are valid as a manifest's app id (1 to 128 of A-Z a-z 0-9 . _ -,
// not starting with a dot) and platform (1 to 32 of a-z 0-9 _ -). Store
// implementations call it before they use the two as names.
func CheckChannel(app, platform string) error {
	if !validAppID(app) || !validPlatform(platform) {
		return fmt.Errorf("%w: invalid app id or platform", ErrMalformed)
	}
	return nil
}

func validAppID(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validPlatform(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
