package pinning

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/moatsec/moat/internal/httpjson"
)

// WellKnownPath is where a server publishes its signed pin-set document
// ([DocumentHandler]) and where a [Refresher] is usually pointed. It
// follows RFC 8615's /.well-known/ convention but is not registered with
// IANA.
const WellKnownPath = "/.well-known/moat-pins"

// DocumentType is the "typ" header of a pin-set document's JWS, so that a
// signature made for anything else with the same key (a token, an update
// manifest) is never taken for a pin set.
const DocumentType = "moat-pins+jws"

// DocumentContentType is the media type a pin-set document is served as:
// a JWS in compact serialization (RFC 7515 §9.2.1).
const DocumentContentType = "application/jose"

// MaxDocumentBytes is the largest pin-set document [ParseDocument] reads.
const MaxDocumentBytes = 64 << 10

// documentAlgs are the only signature algorithms a document may use.
var documentAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// A Document is a pin set signed by its publisher: a JWS (RFC 7515) in
// compact serialization, "typ" [DocumentType], signed with ES256 or EdDSA,
// whose payload is the set's JSON form (see [Set.MarshalJSON]) plus
// "issued_at". A document's set always has a version of at least 1, an
// expiry, and a backup pin in every rule.
type Document struct {
	// Set is the signed pin set.
	Set *Set
	// IssuedAt is when the document was signed.
	IssuedAt time.Time
	raw      []byte
}

// Raw returns the document's compact JWS, as signed or parsed.
func (d *Document) Raw() []byte { return append([]byte(nil), d.raw...) }

// docJSON is a document's payload.
type docJSON struct {
	setJSON
	IssuedAt string `json:"issued_at"`
}

// SignDocument signs set with key (ECDSA P-256 for ES256, or Ed25519 for
// EdDSA; any crypto.Signer of those, such as a key in an HSM), stamped
// issuedAt. The JWS "kid" is the key's RFC 7638 thumbprint. The set needs
// a version of at least 1, an expiry after issuedAt, and no
// InsecureNoBackupPin ([ErrInvalidSet]).
func SignDocument(set *Set, key crypto.Signer, issuedAt time.Time) (*Document, error) {
	issuedAt = issuedAt.UTC().Truncate(time.Second)
	if err := checkPublishable(set, issuedAt); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrUnsupportedKey)
	}
	alg, err := keyAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(docJSON{setJSON: set.toJSON(), IssuedAt: issuedAt.Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType(DocumentType).WithHeader("kid", kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(key)}, opts)
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: signing document: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: signing document: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: signing document: %w", err)
	}
	return &Document{Set: set, IssuedAt: issuedAt, raw: []byte(compact)}, nil
}

// checkPublishable checks what a document's set needs beyond NewSet.
func checkPublishable(set *Set, issuedAt time.Time) error {
	switch {
	case set == nil:
		return fmt.Errorf("%w: no set", ErrInvalidSet)
	case set.version == 0:
		return fmt.Errorf("%w: a published set needs a version of at least 1", ErrInvalidSet)
	case set.expires.IsZero():
		return fmt.Errorf("%w: a published set needs an expiry", ErrInvalidSet)
	case !set.expires.After(issuedAt):
		return fmt.Errorf("%w: the set expires before it is issued", ErrInvalidSet)
	case set.noBackup:
		return fmt.Errorf("%w: a published set cannot allow rules without a backup pin", ErrInvalidSet)
	}
	return nil
}

// keyAlgorithm returns the JWS algorithm for a supported public key.
func keyAlgorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k != nil && k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return jose.EdDSA, nil
		}
	}
	return "", fmt.Errorf("%w: have %T", ErrUnsupportedKey, pub)
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ParseDocument verifies a pin-set document's signature with keys (the
// publisher's ECDSA P-256 or Ed25519 public keys; at least one, and several
// while the signing key rotates) and returns it. It refuses, in this
// order of seriousness: a malformed JWS, another "typ" or algorithm
// ([ErrInvalidDocument]); a signature no key verifies ([ErrBadSignature]);
// a payload that is not a valid, publishable set ([ErrInvalidDocument]).
//
// It does not look at the time: callers refuse an expired document with
// doc.Set.Expired(now) ([Refresher] does), and order versions themselves.
func ParseDocument(data []byte, keys []crypto.PublicKey) (*Document, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no verification keys given", ErrUnsupportedKey)
	}
	kids := make([]string, len(keys))
	for i, k := range keys {
		if _, err := keyAlgorithm(k); err != nil {
			return nil, err
		}
		var err error
		if kids[i], err = thumbprint(k); err != nil {
			return nil, err
		}
	}
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidDocument, MaxDocumentBytes)
	}
	compact := strings.TrimSpace(string(data))
	jws, err := jose.ParseSignedCompact(compact, documentAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: not a compact JWS with ES256 or EdDSA", ErrInvalidDocument)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrInvalidDocument)
	}
	hdr := jws.Signatures[0].Header
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != DocumentType {
		return nil, fmt.Errorf("%w: typ must be %q", ErrInvalidDocument, DocumentType)
	}
	var payload []byte
	for i, k := range keys {
		if hdr.KeyID != "" && hdr.KeyID != kids[i] {
			continue
		}
		if p, err := jws.Verify(k); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, ErrBadSignature
	}
	var j docJSON
	if err := decodeStrict(payload, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	issuedAt, err := time.Parse(time.RFC3339, j.IssuedAt)
	if err != nil {
		return nil, fmt.Errorf("%w: issued_at is not an RFC 3339 time", ErrInvalidDocument)
	}
	cfg, err := j.config()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	set, err := NewSet(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	if err := checkPublishable(set, issuedAt); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	return &Document{Set: set, IssuedAt: issuedAt, raw: []byte(compact)}, nil
}

// A DocumentHandler publishes a signed pin-set document: mount it at
// [WellKnownPath]. It answers GET and HEAD with the document as
// [DocumentContentType], an ETag, and a five-minute public cache lifetime;
// If-None-Match with the current ETag gets 304. The signing key does not
// need to be on the server: sign offline ("moat pins sign") and load the
// result with [ParseDocument].
type DocumentHandler struct {
	cur atomic.Pointer[servedDoc]
}

type servedDoc struct {
	doc  *Document
	etag string
}

var _ http.Handler = (*DocumentHandler)(nil)

// NewDocumentHandler returns a handler serving doc.
func NewDocumentHandler(doc *Document) (*DocumentHandler, error) {
	h := &DocumentHandler{}
	if err := h.Update(doc); err != nil {
		return nil, err
	}
	return h, nil
}

// Update replaces the served document. A document with a lower version
// than the one served is refused with [ErrStaleDocument]: clients would
// refuse it too.
func (h *DocumentHandler) Update(doc *Document) error {
	if doc == nil || doc.Set == nil || len(doc.raw) == 0 {
		return fmt.Errorf("%w: no document", ErrInvalidDocument)
	}
	if cur := h.cur.Load(); cur != nil && doc.Set.Version() < cur.doc.Set.Version() {
		return fmt.Errorf("%w: version %d is below the served %d", ErrStaleDocument, doc.Set.Version(), cur.doc.Set.Version())
	}
	sum := sha256.Sum256(doc.raw)
	h.cur.Store(&servedDoc{doc: doc, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`})
	return nil
}

// ServeHTTP implements http.Handler.
func (h *DocumentHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, http.StatusMethodNotAllowed, "invalid_request", "the pin-set document is read with GET", nil)
		return
	}
	cur := h.cur.Load()
	hdr := w.Header()
	hdr.Set("ETag", cur.etag)
	hdr.Set("Cache-Control", "public, max-age=300")
	if r.Header.Get("If-None-Match") == cur.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", DocumentContentType)
	hdr.Set("Content-Length", fmt.Sprint(len(cur.doc.raw)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(cur.doc.raw)
	}
}
