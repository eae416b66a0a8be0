package securestore

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// The store header: how to get the key-encryption key (KEK), and the
// keyring sealed under it. The layout is documented in the package doc
// ("Header format").
const (
	headerName  = "header"
	headerMagic = "MSST"
	headerV1    = 1

	sourcePasscode = 1
	sourceProvider = 2

	minSalt       = 16
	maxSalt       = 64
	saltSize      = 32
	maxWrappedKEK = 4096
	maxKeyring    = 1 << 20
	checksumSize  = sha256.Size
)

// header is a parsed store header.
type header struct {
	source byte
	// passcode stores
	argon2 Argon2Params
	salt   []byte
	// provider stores
	wrappedKEK []byte
	// keyringAD is every byte before the keyring length: the keyring's
	// additional data.
	keyringAD []byte
	// keyring is the sealed keyring (an envelope under the KEK).
	keyring []byte
}

// parseHeader checks structure, checksum and parameter bounds, in that
// order, without allocating anything in proportion to claimed sizes.
func parseHeader(b []byte) (*header, error) {
	corrupt := func(why string) error { return fmt.Errorf("%w: %s", ErrCorruptHeader, why) }
	if len(b) < len(headerMagic)+2+4+checksumSize {
		return nil, corrupt("too short")
	}
	if string(b[:4]) != headerMagic {
		return nil, corrupt("bad magic")
	}
	body, sum := b[:len(b)-checksumSize], b[len(b)-checksumSize:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return nil, corrupt("checksum mismatch")
	}
	if body[4] != headerV1 {
		return nil, corrupt(fmt.Sprintf("unsupported header version %d", body[4]))
	}
	h := &header{source: body[5]}
	rest := body[6:]
	switch h.source {
	case sourcePasscode:
		if len(rest) < 10 {
			return nil, corrupt("truncated parameters")
		}
		h.argon2 = Argon2Params{
			Time:      binary.BigEndian.Uint32(rest[0:4]),
			MemoryKiB: binary.BigEndian.Uint32(rest[4:8]),
			Threads:   rest[8],
		}
		if err := h.argon2.validate(); err != nil {
			return nil, err
		}
		n := int(rest[9])
		rest = rest[10:]
		if n < minSalt || n > maxSalt || len(rest) < n {
			return nil, corrupt("bad salt length")
		}
		h.salt, rest = rest[:n], rest[n:]
	case sourceProvider:
		if len(rest) < 2 {
			return nil, corrupt("truncated wrapped key")
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n == 0 || n > maxWrappedKEK || len(rest) < n {
			return nil, corrupt("bad wrapped key length")
		}
		h.wrappedKEK, rest = rest[:n], rest[n:]
	default:
		return nil, corrupt(fmt.Sprintf("unknown key source %d", h.source))
	}
	if len(rest) < 4 {
		return nil, corrupt("truncated keyring")
	}
	h.keyringAD = body[:len(body)-len(rest)]
	n := int(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if n > maxKeyring || n != len(rest) {
		return nil, corrupt("bad keyring length")
	}
	h.keyring = rest
	return h, nil
}

// marshalHeader encodes h with a sealed keyring produced by sealKeyring,
// which receives the keyring's additional data.
func marshalHeader(h *header, sealKeyring func(ad []byte) ([]byte, error)) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(headerMagic)
	b.WriteByte(headerV1)
	b.WriteByte(h.source)
	switch h.source {
	case sourcePasscode:
		b.Write(binary.BigEndian.AppendUint32(nil, h.argon2.Time))
		b.Write(binary.BigEndian.AppendUint32(nil, h.argon2.MemoryKiB))
		b.WriteByte(h.argon2.Threads)
		b.WriteByte(byte(len(h.salt)))
		b.Write(h.salt)
	case sourceProvider:
		if len(h.wrappedKEK) == 0 || len(h.wrappedKEK) > maxWrappedKEK {
			return nil, fmt.Errorf("moat/securestore: key provider returned a wrapped key of %d bytes (want 1 to %d)", len(h.wrappedKEK), maxWrappedKEK)
		}
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(h.wrappedKEK))))
		b.Write(h.wrappedKEK)
	}
	ad := bytes.Clone(b.Bytes())
	ring, err := sealKeyring(ad)
	if err != nil {
		return nil, err
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ring))))
	b.Write(ring)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

// keyringData is the plaintext of a keyring.
type keyringData struct {
	aead     AEAD
	nameKey  []byte
	indexKey []byte
	current  uint32
	keys     []dataKey
}

type dataKey struct {
	id  uint32
	key []byte
}

const (
	keyringV1      = 1
	keyringFixed   = 1 + 1 + 32 + 32 + 4 + 2
	keyringEntry   = 4 + 32
	maxDataKeys    = 1024
	kekEnvelopeKey = 0
)

func (k *keyringData) marshal() []byte {
	out := make([]byte, 0, keyringFixed+len(k.keys)*keyringEntry)
	out = append(out, keyringV1, byte(k.aead))
	out = append(out, k.nameKey...)
	out = append(out, k.indexKey...)
	out = binary.BigEndian.AppendUint32(out, k.current)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.keys)))
	for _, dk := range k.keys {
		out = binary.BigEndian.AppendUint32(out, dk.id)
		out = append(out, dk.key...)
	}
	return out
}

// parseKeyring checks a decrypted keyring. A keyring that authenticated but
// does not parse is a corrupt header written by a buggy or newer version.
func parseKeyring(b []byte) (*keyringData, error) {
	corrupt := func(why string) error { return fmt.Errorf("%w: keyring: %s", ErrCorruptHeader, why) }
	if len(b) < keyringFixed || b[0] != keyringV1 {
		return nil, corrupt("bad version or length")
	}
	k := &keyringData{
		aead:     AEAD(b[1]),
		nameKey:  b[2:34],
		indexKey: b[34:66],
		current:  binary.BigEndian.Uint32(b[66:70]),
	}
	if k.aead.nonceSize() == 0 {
		return nil, fmt.Errorf("%w: aead %d", ErrUnknownAlgorithm, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[70:72]))
	if n == 0 || n > maxDataKeys || len(b) != keyringFixed+n*keyringEntry {
		return nil, corrupt("bad key count")
	}
	seen := make(map[uint32]bool, n)
	for i := range n {
		e := b[keyringFixed+i*keyringEntry:]
		id := binary.BigEndian.Uint32(e)
		if id == kekEnvelopeKey || seen[id] {
			return nil, corrupt("bad key id")
		}
		seen[id] = true
		k.keys = append(k.keys, dataKey{id: id, key: e[4:36]})
	}
	if !seen[k.current] {
		return nil, corrupt("current key missing")
	}
	return k, nil
}
