package update

import (
	"crypto"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// rootType is the "type" member of every root payload.
const rootType = "moat.update.root.v1"

// maxRootBytes bounds a root document.
const maxRootBytes = 1 << 20

// Root is the content of a trust root: who may sign the next root and
// who may sign manifests, and how many of them must.
type Root struct {
	// Version starts at 1 and grows by exactly 1 at each rotation.
	Version uint64
	// Expires is when clients stop trusting this root (truncated to the
	// second). A client refuses every manifest while its newest root is
	// expired.
	Expires time.Time
	// RootKeys may sign the next root; RootThreshold of them must.
	RootKeys      []jose.JSONWebKey
	RootThreshold int
	// ManifestKeys may sign manifests; ManifestThreshold of them must.
	ManifestKeys      []jose.JSONWebKey
	ManifestThreshold int
}

// rootPayload is the signed JSON of a root.
type rootPayload struct {
	Type              string      `json:"type"`
	Version           uint64      `json:"version"`
	Expires           int64       `json:"expires"`
	RootKeys          []publicJWK `json:"root_keys"`
	RootThreshold     int         `json:"root_threshold"`
	ManifestKeys      []publicJWK `json:"manifest_keys"`
	ManifestThreshold int         `json:"manifest_threshold"`
}

var rootMembers = []string{"type", "version", "expires", "root_keys", "root_threshold", "manifest_keys", "manifest_threshold"}

// SignRoot signs r with signers and returns the root document. For a first
// root the signers are its own root keys; for a rotation they must include
// a threshold of the previous root's keys and a threshold of r's own
// (check the result with [TrustedRoot.Update]).
func SignRoot(r Root, signers ...crypto.Signer) ([]byte, error) {
	p := rootPayload{Type: rootType, Version: r.Version, Expires: r.Expires.Unix(),
		RootThreshold: r.RootThreshold, ManifestThreshold: r.ManifestThreshold}
	var err error
	if p.RootKeys, err = encodeKeys(r.RootKeys); err != nil {
		return nil, err
	}
	if p.ManifestKeys, err = encodeKeys(r.ManifestKeys); err != nil {
		return nil, err
	}
	if _, _, err := p.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return signEnvelope(b, typRoot, signers)
}

func encodeKeys(keys []jose.JSONWebKey) ([]publicJWK, error) {
	out := make([]publicJWK, 0, len(keys))
	for _, k := range keys {
		pub := k.Key
		if s, ok := pub.(crypto.Signer); ok {
			pub = s.Public()
		}
		j, err := encodePublicJWK(pub)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// check validates a root payload and returns its key sets by id.
func (p *rootPayload) check() (rootKeys, manifestKeys map[string]crypto.PublicKey, err error) {
	if p.Type != rootType {
		return nil, nil, malformed("not a %s document", rootType)
	}
	if p.Version < 1 || p.Version > maxSafeInt {
		return nil, nil, malformed("root version must be 1 to 2^53-1")
	}
	if p.Expires <= 0 || p.Expires > maxSafeInt {
		return nil, nil, malformed("root expiry is out of range")
	}
	if rootKeys, err = keySet(p.RootKeys, p.RootThreshold, "root"); err != nil {
		return nil, nil, err
	}
	if manifestKeys, err = keySet(p.ManifestKeys, p.ManifestThreshold, "manifest"); err != nil {
		return nil, nil, err
	}
	return rootKeys, manifestKeys, nil
}

func keySet(keys []publicJWK, threshold int, role string) (map[string]crypto.PublicKey, error) {
	if len(keys) == 0 || len(keys) > maxKeys {
		return nil, malformed("a root lists 1 to %d %s keys", maxKeys, role)
	}
	if threshold < 1 || threshold > len(keys) {
		return nil, malformed("%s threshold must be between 1 and the number of %s keys", role, role)
	}
	set := make(map[string]crypto.PublicKey, len(keys))
	for _, k := range keys {
		pub, err := k.decode()
		if err != nil {
			return nil, err
		}
		if _, dup := set[k.Kid]; dup {
			return nil, malformed("%s key listed twice", role)
		}
		set[k.Kid] = pub
	}
	return set, nil
}

// TrustedRoot is a root whose signatures were verified: the first root an
// app ships with, or a successor reached through [TrustedRoot.Update].
type TrustedRoot struct {
	payload      rootPayload
	raw          []byte
	rootKeys     map[string]crypto.PublicKey
	manifestKeys map[string]crypto.PublicKey
}

// ParseRoot parses a root document and checks that a threshold of its own
// root keys signed it. It does not check expiry (see
// [TrustedRoot.CheckExpiry]): an app's shipped root may have expired and
// still be the start of the rotation chain. Use it for the root an app
// ships with or an operator holds, never for one fetched from a server
// (that goes through [TrustedRoot.Update]).
func ParseRoot(data []byte) (*TrustedRoot, error) {
	p, err := parseRootPayload(data)
	if err != nil {
		return nil, err
	}
	rk, mk, err := p.check()
	if err != nil {
		return nil, err
	}
	if _, err := verifyEnvelope(data, typRoot, rk, p.RootThreshold); err != nil {
		return nil, fmt.Errorf("root version %d: %w", p.Version, err)
	}
	return &TrustedRoot{payload: *p, raw: append([]byte(nil), data...), rootKeys: rk, manifestKeys: mk}, nil
}

func parseRootPayload(data []byte) (*rootPayload, error) {
	if len(data) > maxRootBytes {
		return nil, fmt.Errorf("%w: root document over %d bytes", ErrTooLarge, maxRootBytes)
	}
	b, err := unverifiedPayload(data)
	if err != nil {
		return nil, err
	}
	var p rootPayload
	if err := decodeStrict(b, &p, rootMembers...); err != nil {
		return nil, err
	}
	return &p, nil
}

// Update verifies next as the successor of t: next's version must be
// exactly t's plus one ([ErrRollback] otherwise), and it must be signed by
// a threshold of t's root keys and by a threshold of its own root keys
// ([ErrSignature]). Expiry of t and next is not checked here: clients
// follow every rotation in order and then check the newest root's expiry.
func (t *TrustedRoot) Update(next []byte) (*TrustedRoot, error) {
	if _, err := verifyEnvelope(next, typRoot, t.rootKeys, t.payload.RootThreshold); err != nil {
		return nil, fmt.Errorf("root rotation to version %d: signatures of version %d: %w", t.payload.Version+1, t.payload.Version, err)
	}
	n, err := ParseRoot(next)
	if err != nil {
		return nil, err
	}
	if n.payload.Version != t.payload.Version+1 {
		return nil, fmt.Errorf("%w: root version %d does not follow version %d", ErrRollback, n.payload.Version, t.payload.Version)
	}
	return n, nil
}

// Version returns the root's version.
func (t *TrustedRoot) Version() uint64 { return t.payload.Version }

// Expires returns when the root expires.
func (t *TrustedRoot) Expires() time.Time { return time.Unix(t.payload.Expires, 0).UTC() }

// Bytes returns the signed root document.
func (t *TrustedRoot) Bytes() []byte { return append([]byte(nil), t.raw...) }

// Root returns the root's content.
func (t *TrustedRoot) Root() Root {
	r := Root{Version: t.payload.Version, Expires: t.Expires(),
		RootThreshold: t.payload.RootThreshold, ManifestThreshold: t.payload.ManifestThreshold}
	for _, k := range t.payload.RootKeys {
		r.RootKeys = append(r.RootKeys, jose.JSONWebKey{Key: t.rootKeys[k.Kid], KeyID: k.Kid})
	}
	for _, k := range t.payload.ManifestKeys {
		r.ManifestKeys = append(r.ManifestKeys, jose.JSONWebKey{Key: t.manifestKeys[k.Kid], KeyID: k.Kid})
	}
	return r
}

// CheckExpiry returns [ErrExpired] when now is at or after the root's
// expiry.
func (t *TrustedRoot) CheckExpiry(now time.Time) error {
	if expired(t.Expires(), now) {
		return fmt.Errorf("%w: root version %d expired at %s", ErrExpired, t.payload.Version, t.Expires().Format(time.RFC3339))
	}
	return nil
}

// expired is the one expiry rule of the package (as in TUF): a document
// is expired from its expiry instant on.
func expired(expires, now time.Time) bool { return !now.Before(expires) }

// VerifyManifest verifies a signed manifest under t at time now and returns
// it. In order: the manifest signatures must reach t's manifest threshold
// ([ErrSignature]); the content must be well formed ([ErrMalformed],
// [ErrUnsafePath]); t must not be expired and neither may the manifest
// ([ErrExpired]). It does not check the app, platform or version against
// the installation; the [Client] does.
func (t *TrustedRoot) VerifyManifest(data []byte, now time.Time) (*Manifest, error) {
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("%w: manifest over %d bytes", ErrTooLarge, maxManifestBytes)
	}
	payload, err := verifyEnvelope(data, typManifest, t.manifestKeys, t.payload.ManifestThreshold)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := decodeManifestPayload(payload)
	if err != nil {
		return nil, err
	}
	if err := t.CheckExpiry(now); err != nil {
		return nil, err
	}
	if expired(m.Expires, now) {
		return nil, fmt.Errorf("%w: manifest for bundle version %d expired at %s", ErrExpired, m.BundleVersion, m.Expires.Format(time.RFC3339))
	}
	m.signed = append([]byte(nil), data...)
	return m, nil
}
