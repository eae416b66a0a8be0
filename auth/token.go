package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenType is the JWT "typ" of moat access tokens (RFC 9068 §2.1).
const TokenType = "at+jwt"

// DefaultMaxTokenSize is the largest access token a [Validator] reads when
// ValidatorConfig.MaxTokenSize is zero.
const DefaultMaxTokenSize = 8 << 10

// accessClaims are the claims of a moat access token (RFC 9068 plus the
// app context).
type accessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	// AMRTimes holds, for each AMR entry at the same index, when that
	// method last succeeded (Unix seconds).
	AMRTimes   []int64    `json:"amr_at,omitempty"`
	AuthTime   int64      `json:"auth_time,omitempty"`
	Cnf        *confirmed `json:"cnf,omitempty"`
	AppID      string     `json:"app_id,omitempty"`
	AppVersion string     `json:"app_version,omitempty"`
	Platform   string     `json:"platform,omitempty"`
	Channel    string     `json:"channel,omitempty"`
	DeviceID   string     `json:"device_id,omitempty"`
}

type confirmed struct {
	JKT string `json:"jkt"`
}

// audience is the "aud" claim: a string or an array of strings. Any other
// JSON type is an error.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		*a = l
		return nil
	}
	return errors.New("aud must be a string or an array of strings")
}

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (c *accessClaims) principal() *Principal {
	p := &Principal{
		ClientID:   c.ClientID,
		AppID:      c.AppID,
		AppVersion: c.AppVersion,
		Platform:   c.Platform,
		Channel:    c.Channel,
		DeviceID:   c.DeviceID,
		Subject:    c.Subject,
		ACR:        c.ACR,
		AMR:        c.AMR,
		TokenID:    c.ID,
		Expiry:     time.Unix(c.Expiry, 0),
	}
	if c.Scope != "" {
		p.Scope = strings.Fields(c.Scope)
	}
	if c.AuthTime != 0 {
		p.AuthTime = time.Unix(c.AuthTime, 0)
	}
	if len(c.AMRTimes) == len(c.AMR) && len(c.AMR) > 0 {
		p.AMRTimes = make(map[string]time.Time, len(c.AMR))
		for i, m := range c.AMR {
			p.AMRTimes[m] = time.Unix(c.AMRTimes[i], 0)
		}
	}
	if c.Cnf != nil {
		p.KeyThumbprint = c.Cnf.JKT
	}
	return p
}

// ValidatorConfig configures [NewValidator]. Issuer, Audience, Algorithms
// and Keys are required.
type ValidatorConfig struct {
	// Issuer is the exact "iss" a token must carry. Required.
	Issuer string
	// Audience must appear in the token's "aud" (a string or an array).
	// Required.
	Audience string
	// Algorithms lists the signature algorithms accepted: ES256 and/or
	// EdDSA. Required; a token's own "alg" is only checked against it.
	Algorithms []string
	// Keys resolves the token's "kid". Required.
	Keys KeySource
	// Leeway tolerates clock skew on exp, nbf and iat. Zero means none.
	Leeway time.Duration
	// MaxTokenSize bounds the token length read; longer tokens are refused
	// before any decoding. Zero means DefaultMaxTokenSize.
	MaxTokenSize int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Validator validates moat access tokens (RFC 9068 JWTs). It makes no
// network call and takes keys only from its KeySource. It is safe for
// concurrent use.
type Validator struct {
	cfg ValidatorConfig
}

// NewValidator checks cfg and returns a validator.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: validator needs the expected issuer", ErrInvalidConfiguration)
	}
	if cfg.Audience == "" {
		return nil, fmt.Errorf("%w: validator needs the expected audience", ErrInvalidConfiguration)
	}
	if err := checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: validator needs a key source", ErrInvalidConfiguration)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("%w: negative leeway", ErrInvalidConfiguration)
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = DefaultMaxTokenSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Validator{cfg: cfg}, nil
}

// Validate checks an access token's size, structure, type, algorithm, key,
// signature, issuer, audience and validity period, and returns its
// principal. A DPoP-bound token's principal has KeyThumbprint set: the
// caller must then check a DPoP proof by that key (the resource middleware
// does).
func (v *Validator) Validate(token string) (*Principal, error) {
	c, err := v.validate(token)
	if err != nil {
		return nil, err
	}
	return c.principal(), nil
}

// ValidateClaims is Validate that also returns the verified claims as
// JSON, for tools that show a token.
func (v *Validator) ValidateClaims(token string) (*Principal, json.RawMessage, error) {
	c, payload, err := v.validateRaw(token)
	if err != nil {
		return nil, nil, err
	}
	return c.principal(), payload, nil
}

func (v *Validator) validate(token string) (*accessClaims, error) {
	c, _, err := v.validateRaw(token)
	return c, err
}

func (v *Validator) validateRaw(token string) (*accessClaims, json.RawMessage, error) {
	jws, err := parseCompactJWS(token, v.cfg.MaxTokenSize)
	if err != nil {
		return nil, nil, err
	}
	if !containsString(v.cfg.Algorithms, jws.header.Alg) {
		return nil, nil, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, truncate(jws.header.Alg))
	}
	if !strings.EqualFold(jws.header.Typ, TokenType) && !strings.EqualFold(jws.header.Typ, "application/"+TokenType) {
		return nil, nil, ErrWrongTokenType
	}
	if jws.header.Kid == "" {
		return nil, nil, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
	}
	key, ok := v.cfg.Keys.VerificationKey(jws.header.Kid)
	if !ok {
		return nil, nil, ErrUnknownKey
	}
	if key.Algorithm != jws.header.Alg {
		return nil, nil, fmt.Errorf("%w: key %s is for %s", ErrAlgorithmNotAllowed, key.ID, key.Algorithm)
	}
	if err := jws.verify(key.Algorithm, key.Key); err != nil {
		return nil, nil, err
	}
	var c accessClaims
	if err := json.Unmarshal(jws.payload, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %v", ErrMalformedToken, err)
	}
	if c.Issuer != v.cfg.Issuer {
		return nil, nil, ErrWrongIssuer
	}
	if !containsString(c.Audience, v.cfg.Audience) {
		return nil, nil, ErrWrongAudience
	}
	if c.Expiry == 0 || c.ID == "" || c.ClientID == "" || c.IssuedAt == 0 {
		return nil, nil, fmt.Errorf("%w: exp, iat, jti and client_id are required", ErrMissingClaim)
	}
	now := v.cfg.Now()
	leeway := int64(v.cfg.Leeway / time.Second)
	unix := now.Unix()
	if unix >= c.Expiry+leeway {
		return nil, nil, ErrTokenExpired
	}
	if c.NotBefore != 0 && unix+leeway < c.NotBefore {
		return nil, nil, ErrTokenNotYetValid
	}
	if unix+leeway < c.IssuedAt {
		return nil, nil, ErrTokenNotYetValid
	}
	return &c, jws.payload, nil
}

// truncate shortens attacker-supplied text before it goes into an error.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
