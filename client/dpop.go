package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// ProofSigner makes DPoP proofs (RFC 9449) with one key.
type ProofSigner struct {
	signer jose.Signer
	jkt    string
	pub    crypto.PublicKey
}

// NewProofSigner returns a proof signer for key: an ECDSA P-256 key
// (ES256) or an Ed25519 key (EdDSA); any crypto.Signer with such a public
// key works, including keys held in a secure element.
func NewProofSigner(key crypto.Signer) (*ProofSigner, error) {
	if key == nil {
		return nil, fmt.Errorf("moat/client: nil key")
	}
	var alg jose.SignatureAlgorithm
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("moat/client: ECDSA keys must be P-256")
		}
		alg = jose.ES256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("moat/client: unsupported key type %T", k)
	}
	var sk any = key
	switch key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		sk = cryptosigner.Opaque(key)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, fmt.Errorf("moat/client: proof signer: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("moat/client: thumbprint: %w", err)
	}
	return &ProofSigner{signer: s, jkt: base64.RawURLEncoding.EncodeToString(tp), pub: key.Public()}, nil
}

// Thumbprint returns the RFC 7638 thumbprint of the key (the cnf.jkt of
// tokens bound to it).
func (p *ProofSigner) Thumbprint() string { return p.jkt }

// PublicJWK returns the public key as a JWK.
func (p *ProofSigner) PublicJWK() jose.JSONWebKey { return jose.JSONWebKey{Key: p.pub} }

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a proof for one request: method and URL (query and
// fragment are dropped from htu), the access token it accompanies (ath;
// empty for token-endpoint requests), and the server's nonce if it gave one.
func (p *ProofSigner) Proof(method, url, accessToken, nonce string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	c := proofClaims{
		JTI: base64.RawURLEncoding.EncodeToString(jti[:]), HTM: method, HTU: stripQuery(url),
		IAT: now.Unix(), Nonce: nonce,
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(b)
	if err != nil {
		return "", fmt.Errorf("moat/client: signing proof: %w", err)
	}
	return jws.CompactSerialize()
}

func stripQuery(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' || u[i] == '#' {
			return u[:i]
		}
	}
	return u
}
