package securestore

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
)

// The envelope is the one sealed format of this package: store records,
// the keyring inside a store header, and [Sealer] output all use it. The
// layout is documented in the package doc ("Record format").
const (
	envelopeV1 = 1
	// envelopePrefix is version, AEAD, key id (4) and clear length (2).
	envelopePrefix = 8
	tagSize        = 16
	// maxClear bounds the clear (authenticated, unencrypted) section.
	maxClear = 1<<16 - 1
)

// envelope is a parsed record. Its slices alias the input.
type envelope struct {
	aead  AEAD
	keyID uint32
	// head is the prefix and the clear section: authenticated as the
	// start of the additional data.
	head  []byte
	clear []byte
	nonce []byte
	// sealed is the ciphertext with its tag.
	sealed []byte
}

// parseEnvelope checks a record's structure. Every failure is
// ErrCorruptRecord: nothing about a damaged record is trusted.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < envelopePrefix {
		return envelope{}, fmt.Errorf("%w: %d bytes is too short", ErrCorruptRecord, len(b))
	}
	if b[0] != envelopeV1 {
		return envelope{}, fmt.Errorf("%w: unsupported format version %d", ErrCorruptRecord, b[0])
	}
	e := envelope{aead: AEAD(b[1]), keyID: binary.BigEndian.Uint32(b[2:6])}
	ns := e.aead.nonceSize()
	if ns == 0 {
		return envelope{}, fmt.Errorf("%w: unknown aead %d", ErrCorruptRecord, b[1])
	}
	clearLen := int(binary.BigEndian.Uint16(b[6:8]))
	rest := b[envelopePrefix:]
	if len(rest) < clearLen+ns+tagSize {
		return envelope{}, fmt.Errorf("%w: %d bytes is too short", ErrCorruptRecord, len(b))
	}
	e.head = b[:envelopePrefix+clearLen]
	e.clear = rest[:clearLen]
	e.nonce = rest[clearLen : clearLen+ns]
	e.sealed = rest[clearLen+ns:]
	return e, nil
}

// adPool holds scratch buffers for additional data.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// withAD calls fn with the additional data the AEAD authenticates besides
// the ciphertext: the envelope's head followed by the caller's context
// (the record's name for store records, the caller's bytes for a Sealer).
func withAD[AD string | []byte](head []byte, ad AD, fn func([]byte) ([]byte, error)) ([]byte, error) {
	p := adPool.Get().(*[]byte)
	buf := append(append((*p)[:0], head...), ad...)
	out, err := fn(buf)
	if cap(buf) <= 64<<10 {
		*p = buf[:0]
		adPool.Put(p)
	}
	return out, err
}

// openEnvelope authenticates and decrypts e with c, appending the
// plaintext to dst.
func openEnvelope[AD string | []byte](e envelope, dst []byte, c cipher.AEAD, ad AD) ([]byte, error) {
	out, err := withAD(e.head, ad, func(full []byte) ([]byte, error) {
		return c.Open(dst, e.nonce, e.sealed, full)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorruptRecord)
	}
	return out, nil
}

// sealEnvelope seals plaintext under c (a cipher of kind a) with a fresh
// random nonce. clear is authenticated but stored unencrypted; ad is
// authenticated and not stored.
func sealEnvelope[AD string | []byte](a AEAD, c cipher.AEAD, keyID uint32, clear, plaintext []byte, ad AD) ([]byte, error) {
	if len(clear) > maxClear {
		return nil, fmt.Errorf("%w: clear section of %d bytes", ErrTooLarge, len(clear))
	}
	ns := c.NonceSize()
	headLen := envelopePrefix + len(clear)
	out := make([]byte, headLen+ns, headLen+ns+len(plaintext)+c.Overhead())
	out[0] = envelopeV1
	out[1] = byte(a)
	binary.BigEndian.PutUint32(out[2:6], keyID)
	binary.BigEndian.PutUint16(out[6:8], uint16(len(clear)))
	copy(out[envelopePrefix:], clear)
	nonce := out[headLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return withAD(out[:headLen], ad, func(full []byte) ([]byte, error) {
		return c.Seal(out, nonce, plaintext, full), nil
	})
}
