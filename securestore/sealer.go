package securestore

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Sealer encrypts small secrets for a server to keep at rest in its own
// database: TOTP seeds, signing keys. Its method set,
//
//	Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
//	Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error)
//
// is what the packages that keep secrets declare as their own small
// interface, so they need not import this package.
//
// A Sealer holds operator-supplied 32-byte keys, each with a numeric id.
// Every sealed value names the id of the key that sealed it, so keys
// rotate without a flag day: make a new key current (first in
// [SealerConfig.Keys]) and keep the old ones after it; old values still
// open, new ones use the new key, and [Sealer.Reseal] moves an old value
// over. Once nothing is sealed under an old key, drop it.
//
// Sealed values use the record format of the package doc with an empty
// clear section. The associated data (a user id, a key name) is
// authenticated, not stored: a value opens only with the associated data
// it was sealed with, so it cannot be moved to another user's row.
//
// Several server instances that share the same keys open each other's
// values. A Sealer is safe for concurrent use. It is also a [KeyProvider].
type Sealer struct {
	aead    AEAD
	current uint32
	ciphers map[sealerCipherID]cipher.AEAD
}

type sealerCipherID struct {
	id   uint32
	aead AEAD
}

var _ KeyProvider = (*Sealer)(nil)

// SealerKey is one operator key of a [Sealer]. Its String and GoString
// methods print the id only, never the secret.
type SealerKey struct {
	// ID names the key in every value it seals; unique, not 0.
	ID uint32
	// Secret is 32 random bytes.
	Secret []byte
}

// String returns "SealerKey(ID)"; the secret is never formatted.
func (k SealerKey) String() string { return "SealerKey(" + strconv.FormatUint(uint64(k.ID), 10) + ")" }

// GoString is String, so %#v does not print the secret either.
func (k SealerKey) GoString() string { return k.String() }

// GenerateSealerKey returns a new random key with the given id.
func GenerateSealerKey(id uint32) SealerKey {
	return SealerKey{ID: id, Secret: randomKey()}
}

// SealerConfig configures [NewSealer].
type SealerConfig struct {
	// Keys are the sealer's keys: the first seals, all of them open.
	// Required: empty is an error. IDs must be unique and not 0.
	Keys []SealerKey
	// AEAD seals new values. Zero means AES256GCM. Values sealed with
	// either cipher open whatever this says.
	AEAD AEAD
}

// NewSealer returns a sealer for cfg's keys.
func NewSealer(cfg SealerConfig) (*Sealer, error) {
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("%w: a sealer needs at least one key", ErrInvalidKey)
	}
	a := cfg.AEAD.orDefault()
	if a.nonceSize() == 0 {
		return nil, fmt.Errorf("%w: aead %d", ErrUnknownAlgorithm, uint8(cfg.AEAD))
	}
	s := &Sealer{aead: a, current: cfg.Keys[0].ID, ciphers: map[sealerCipherID]cipher.AEAD{}}
	for _, k := range cfg.Keys {
		if k.ID == 0 || len(k.Secret) != 32 {
			return nil, fmt.Errorf("%w: %v must have a non-zero id and a 32-byte secret", ErrInvalidKey, k)
		}
		for _, ka := range []AEAD{AES256GCM, XChaCha20Poly1305} {
			id := sealerCipherID{k.ID, ka}
			if _, dup := s.ciphers[id]; dup {
				return nil, fmt.Errorf("%w: duplicate id in %v", ErrInvalidKey, k)
			}
			// Derived per cipher, so one secret never keys two algorithms.
			sub, err := hkdf.Key(sha256.New, k.Secret, nil, "moat/securestore sealer "+ka.String(), 32)
			if err != nil {
				return nil, err
			}
			c, err := newCipher(ka, sub)
			if err != nil {
				return nil, err
			}
			s.ciphers[id] = c
		}
	}
	return s, nil
}

// Seal encrypts plaintext under the current key with a fresh random
// nonce, binding associatedData. The result is 8 + nonce (12 or 24) + 16
// bytes longer than plaintext.
func (s *Sealer) Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sealEnvelope(s.aead, s.ciphers[sealerCipherID{s.current, s.aead}], s.current, nil, plaintext, associatedData)
}

// Open authenticates and decrypts a value sealed by any of the sealer's
// keys. Anything altered, truncated, sealed with other associated data or
// under a key the sealer does not have is [ErrCorruptRecord].
func (s *Sealer) Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := parseEnvelope(sealed)
	if err != nil {
		return nil, err
	}
	if len(e.clear) != 0 {
		return nil, fmt.Errorf("%w: not a sealed value", ErrCorruptRecord)
	}
	c, ok := s.ciphers[sealerCipherID{e.keyID, e.aead}]
	if !ok {
		return nil, fmt.Errorf("%w: sealed under key %d, which this sealer does not have", ErrCorruptRecord, e.keyID)
	}
	return openEnvelope(e, nil, c, associatedData)
}

// Reseal returns sealed re-sealed under the current key and cipher, and
// true; or sealed itself and false when it already uses them. Callers
// write the new value back when the boolean is true.
func (s *Sealer) Reseal(ctx context.Context, sealed, associatedData []byte) ([]byte, bool, error) {
	plain, err := s.Open(ctx, sealed, associatedData)
	if err != nil {
		return nil, false, err
	}
	defer clear(plain)
	if e, _ := parseEnvelope(sealed); e.keyID == s.current && e.aead == s.aead {
		return sealed, false, nil
	}
	out, err := s.Seal(ctx, plain, associatedData)
	return out, err == nil, err
}

// ParseSealerKeys parses keys written as "ID:BASE64" items separated by
// commas, current key first, e.g. "2:q83v...=,1:3q2+...=", where BASE64 is
// the standard encoding of a 32-byte secret. That is the form an operator
// keeps in a file or an environment variable; [FormatSealerKeys] writes
// it. Errors never quote the secret.
func ParseSealerKeys(text string) ([]SealerKey, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("%w: no sealer keys", ErrInvalidKey)
	}
	var keys []SealerKey
	for i, item := range strings.Split(text, ",") {
		idText, secret, ok := strings.Cut(strings.TrimSpace(item), ":")
		id, err := strconv.ParseUint(idText, 10, 32)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("%w: sealer key %d: want ID:BASE64 with a decimal id above 0", ErrInvalidKey, i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%w: sealer key %d (id %d): want 32 bytes in standard base64", ErrInvalidKey, i+1, id)
		}
		keys = append(keys, SealerKey{ID: uint32(id), Secret: raw})
	}
	return keys, nil
}

// FormatSealerKeys writes keys in the form ParseSealerKeys reads. The
// result is secret.
func FormatSealerKeys(keys ...SealerKey) string {
	items := make([]string, len(keys))
	for i, k := range keys {
		items[i] = strconv.FormatUint(uint64(k.ID), 10) + ":" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(items, ",")
}

func sealerKeyAD(id uint32) []byte {
	return []byte("moat/securestore sealer key " + strconv.FormatUint(uint64(id), 10))
}

// WrapSealerKey seals k's secret with a key provider (a KMS, an HSM), so
// the operator's configuration holds only the wrapped form.
func WrapSealerKey(ctx context.Context, p KeyProvider, k SealerKey) ([]byte, error) {
	if len(k.Secret) != 32 || k.ID == 0 {
		return nil, ErrInvalidKey
	}
	return p.Seal(ctx, k.Secret, sealerKeyAD(k.ID))
}

// UnwrapSealerKey recovers a sealer key that WrapSealerKey wrapped, for
// [NewSealer] at server start.
func UnwrapSealerKey(ctx context.Context, p KeyProvider, id uint32, wrapped []byte) (SealerKey, error) {
	secret, err := p.Open(ctx, wrapped, sealerKeyAD(id))
	if err != nil {
		return SealerKey{}, fmt.Errorf("moat/securestore: key provider: %w", err)
	}
	if len(secret) != 32 {
		return SealerKey{}, fmt.Errorf("%w: unwrapped sealer key %d is %d bytes", ErrInvalidKey, id, len(secret))
	}
	return SealerKey{ID: id, Secret: bytes.Clone(secret)}, nil
}
