package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/internal/nonce"
	"github.com/moatsec/moat/internal/strictjson"
	"github.com/moatsec/moat/kv"
)

// DPoP defaults (RFC 9449). The proof's iat must be within DefaultDPoPWindow
// of the server's clock, in either direction.
const (
	DPoPProofType         = "dpop+jwt"
	DefaultDPoPWindow     = 60 * time.Second
	DefaultMaxProofSize   = 4 << 10
	DefaultDPoPNonceTTL   = 5 * time.Minute
	dpopKeyCacheSize      = 4096
	dpopReplayKeyPrefix   = "moat:dpop:jti:"
	dpopNonceKeyPrefix    = "moat:dpop:nonce:"
	dpopCurrentNonceKey   = "moat:dpop:nonce-current"
	maxDPoPJTILen         = 256
	maxDPoPStringClaimLen = 2048
)

// DPoPConfig configures [NewDPoPVerifier]. Algorithms and Store are
// required.
type DPoPConfig struct {
	// Algorithms lists the proof algorithms accepted (ES256, EdDSA).
	// Required.
	Algorithms []string
	// Store keeps the replay cache of proof ids (jti) and, when nonces are
	// required, the server nonces. Shared by every instance. Required.
	Store kv.Store
	// Window is how far a proof's iat may be from the server's clock, in
	// either direction. Zero means DefaultDPoPWindow.
	Window time.Duration
	// MaxProofSize bounds the proof length read. Zero means
	// DefaultMaxProofSize.
	MaxProofSize int
	// RequireNonce makes every proof carry a server nonce (RFC 9449 §8).
	// False means nonces are not required; proofs are still bounded by the
	// iat window and the replay cache.
	RequireNonce bool
	// NonceTTL is how long a server nonce stays valid. Zero means
	// DefaultDPoPNonceTTL.
	NonceTTL time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// DPoPVerifier checks DPoP proofs (RFC 9449 §4.3). It is safe for
// concurrent use.
type DPoPVerifier struct {
	cfg    DPoPConfig
	nonces *nonce.Issuer

	mu   sync.RWMutex
	keys map[string]*proofKey // raw protected header -> parsed key
}

type proofKey struct {
	alg string
	key any
	jkt string
}

// DPoPProof is a verified proof.
type DPoPProof struct {
	// KeyThumbprint is the RFC 7638 thumbprint of the proof's key (the
	// value a bound token's cnf.jkt must equal).
	KeyThumbprint string
	// Key is the proof's public key.
	Key   any
	JTI   string
	IAT   time.Time
	HTM   string
	HTU   string
	ATH   string
	Alg   string
	Nonce string
}

// DPoPRequest is what a proof is checked against.
type DPoPRequest struct {
	// Method is the request's HTTP method.
	Method string
	// URL is the request's full URL as the client addressed it
	// (scheme, host, path); query and fragment are ignored.
	URL string
	// AccessToken, when not empty, must be hashed in the proof's ath claim
	// (requests to protected resources).
	AccessToken string
}

// NewDPoPVerifier checks cfg and returns a verifier.
func NewDPoPVerifier(cfg DPoPConfig) (*DPoPVerifier, error) {
	if err := checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: DPoP verifier needs a kv.Store for its replay cache", ErrInvalidConfiguration)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultDPoPWindow
	}
	if cfg.MaxProofSize <= 0 {
		cfg.MaxProofSize = DefaultMaxProofSize
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = DefaultDPoPNonceTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ni, err := nonce.New(cfg.Store, dpopNonceKeyPrefix, cfg.NonceTTL)
	if err != nil {
		return nil, err
	}
	return &DPoPVerifier{cfg: cfg, nonces: ni, keys: make(map[string]*proofKey)}, nil
}

// NonceRequired reports whether proofs must carry a server nonce.
func (v *DPoPVerifier) NonceRequired() bool { return v.cfg.RequireNonce }

// Nonce returns the server nonce clients should put in their next proofs.
// Nonces are shared through the store, so any instance accepts any other
// instance's nonce; a new one is minted when the current one is past half
// its lifetime.
func (v *DPoPVerifier) Nonce(ctx context.Context) (string, error) {
	it, err := v.cfg.Store.Get(ctx, dpopCurrentNonceKey)
	if err == nil && it.ExpiresAt.Sub(v.cfg.Now()) > v.cfg.NonceTTL/2 {
		return string(it.Value), nil
	}
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return "", err
	}
	n, err := v.nonces.Issue(ctx, nil)
	if err != nil {
		return "", err
	}
	// The current-nonce pointer lives a little shorter than the nonce.
	if _, err := v.cfg.Store.Set(ctx, dpopCurrentNonceKey, []byte(n), v.cfg.NonceTTL-time.Second); err != nil {
		return "", err
	}
	return n, nil
}

func (v *DPoPVerifier) nonceValid(ctx context.Context, n string) (bool, error) {
	err := v.nonces.Check(ctx, n)
	if errors.Is(err, nonce.ErrInvalid) {
		return false, nil
	}
	return err == nil, err
}

type proofClaims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   string   `json:"ath"`
	Nonce string   `json:"nonce"`
}

// Verify checks a proof for req: header (typ, alg, a public jwk that suits
// alg), signature, htm, htu, iat window, ath, nonce, and finally that the
// proof's jti was not seen before (of concurrent uses of one proof, exactly
// one succeeds). Store failures are returned as such, not as an invalid
// proof.
func (v *DPoPVerifier) Verify(ctx context.Context, proof string, req DPoPRequest) (*DPoPProof, error) {
	if proof == "" {
		return nil, fmt.Errorf("%w: missing", ErrInvalidDPoPProof)
	}
	jws, err := parseCompactJWS(proof, v.cfg.MaxProofSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDPoPProof, err)
	}
	if jws.header.Typ != DPoPProofType {
		return nil, fmt.Errorf("%w: typ must be %s", ErrInvalidDPoPProof, DPoPProofType)
	}
	if !containsString(v.cfg.Algorithms, jws.header.Alg) {
		return nil, fmt.Errorf("%w: %w: %q", ErrInvalidDPoPProof, ErrAlgorithmNotAllowed, truncate(jws.header.Alg))
	}
	pk, err := v.proofKey(jws)
	if err != nil {
		return nil, err
	}
	if err := jws.verify(pk.alg, pk.key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDPoPProof, err)
	}
	var c proofClaims
	if err := strictjson.Check(jws.payload, proofClaimNames); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidDPoPProof, err)
	}
	if err := json.Unmarshal(jws.payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrInvalidDPoPProof)
	}
	if c.JTI == "" || len(c.JTI) > maxDPoPJTILen {
		return nil, fmt.Errorf("%w: jti missing or too long", ErrInvalidDPoPProof)
	}
	if len(c.HTU) > maxDPoPStringClaimLen || len(c.ATH) > 128 || len(c.Nonce) > 128 {
		return nil, fmt.Errorf("%w: claim too long", ErrInvalidDPoPProof)
	}
	if c.HTM != req.Method {
		return nil, fmt.Errorf("%w: htm does not match the request method", ErrInvalidDPoPProof)
	}
	if !sameHTU(c.HTU, req.URL) {
		return nil, fmt.Errorf("%w: htu does not match the request URL", ErrInvalidDPoPProof)
	}
	if c.IAT == nil || math.IsNaN(*c.IAT) || math.IsInf(*c.IAT, 0) {
		return nil, fmt.Errorf("%w: iat missing", ErrInvalidDPoPProof)
	}
	now := v.cfg.Now()
	// Clamped so that the conversion to a Duration cannot overflow (about
	// ±292 years fit); anything that far off is outside the window anyway.
	iat := time.Unix(0, 0).Add(time.Duration(math.Max(math.Min(*c.IAT, 9e9), -9e9) * float64(time.Second)))
	if d := now.Sub(iat); d > v.cfg.Window || d < -v.cfg.Window {
		return nil, fmt.Errorf("%w: iat outside the accepted window", ErrInvalidDPoPProof)
	}
	if req.AccessToken != "" {
		want := sha256b64(req.AccessToken)
		if c.ATH == "" || subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return nil, fmt.Errorf("%w: ath does not match the access token", ErrInvalidDPoPProof)
		}
	}
	if v.cfg.RequireNonce {
		ok, err := v.nonceValid(ctx, c.Nonce)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrDPoPNonce
		}
	}
	replayKey := dpopReplayKeyPrefix + sha256b64(pk.jkt+"\x00"+c.JTI)
	if _, err := v.cfg.Store.CompareAndSet(ctx, replayKey, nil, 2*v.cfg.Window+time.Second, 0); err != nil {
		if errors.Is(err, kv.ErrConflict) {
			return nil, ErrDPoPReplay
		}
		return nil, fmt.Errorf("moat/auth: DPoP replay cache: %w", err)
	}
	return &DPoPProof{
		KeyThumbprint: pk.jkt, Key: pk.key, JTI: c.JTI, IAT: iat,
		HTM: c.HTM, HTU: c.HTU, ATH: c.ATH, Alg: pk.alg, Nonce: c.Nonce,
	}, nil
}

// proofKey returns the parsed public key of a proof's header. Parsed keys
// are cached by the raw header: a client sends the same header with every
// proof.
func (v *DPoPVerifier) proofKey(jws *compactJWS) (*proofKey, error) {
	v.mu.RLock()
	pk, ok := v.keys[jws.rawHeader]
	v.mu.RUnlock()
	if ok {
		return pk, nil
	}
	if len(jws.header.JWK) == 0 {
		return nil, fmt.Errorf("%w: no jwk header", ErrInvalidDPoPProof)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(jws.header.JWK); err != nil {
		return nil, fmt.Errorf("%w: jwk is not a valid key", ErrInvalidDPoPProof)
	}
	if !jwk.IsPublic() {
		return nil, fmt.Errorf("%w: jwk must be a public key", ErrInvalidDPoPProof)
	}
	if !jwk.Valid() {
		return nil, fmt.Errorf("%w: jwk is not a valid key", ErrInvalidDPoPProof)
	}
	alg := algorithmFor(jwk.Key)
	if alg == "" || alg != jws.header.Alg {
		return nil, fmt.Errorf("%w: jwk does not suit alg %q", ErrInvalidDPoPProof, truncate(jws.header.Alg))
	}
	jkt, err := Thumbprint(jwk.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDPoPProof, err)
	}
	pk = &proofKey{alg: alg, key: jwk.Key, jkt: jkt}
	v.mu.Lock()
	if len(v.keys) >= dpopKeyCacheSize {
		for k := range v.keys { // drop an arbitrary entry
			delete(v.keys, k)
			break
		}
	}
	v.keys[jws.rawHeader] = pk
	v.mu.Unlock()
	return pk, nil
}

// sameHTU compares a proof's htu with the request URL after RFC 3986
// syntax- and scheme-based normalization (case of scheme and host, default
// ports, empty path), ignoring query and fragment (RFC 9449 §4.3).
func sameHTU(htu, requestURL string) bool {
	a, ok1 := normalizeHTU(htu)
	b, ok2 := normalizeHTU(requestURL)
	return ok1 && ok2 && a == b
}

func normalizeHTU(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		host += ":" + port
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + normalizePercent(path), true
}

// normalizePercent upper-cases percent-encoding hex digits and decodes
// percent-encoded unreserved characters (RFC 3986 §6.2.2.1-2).
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			c := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

var proofClaimNames = strictjson.FieldNames(proofClaims{})
