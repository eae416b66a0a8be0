package securestore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"hash"
	"sync"
)

// Backend names hide the keys and ids they stand for. A name is the
// deterministic authenticated encryption (SIV construction) of the key:
//
//	iv = HMAC-SHA256(macKey, kind || scope || key)[:16]
//	name = base32(iv || AES-256-CTR(encKey, iv, key))
//
// Equal keys give equal names (that is what lets Get find a record), the
// length of a key shows, and nothing else about it does. The name is also
// authenticated as additional data of its record, so records cannot be
// moved between names.
const (
	ivSize = 16

	kindKV         = 'k'
	kindDoc        = 'd'
	kindCollection = 'c'

	// MaxKeyLen is the longest key, document id or collection name, in
	// bytes. It keeps every backend name within 255 bytes, the file-name
	// limit of common file systems.
	MaxKeyLen = 128
)

// nameEncoding is lower-case base32 without padding: safe as a file name
// on case-insensitive file systems.
var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// namer encrypts and decrypts names and computes blind-index tokens.
type namer struct {
	block cipher.Block
	macs  sync.Pool // of hash.Hash keyed with the name MAC key
	index sync.Pool // of hash.Hash keyed with the index key
}

func newNamer(nameKey, indexKey []byte) (*namer, error) {
	macKey, err := hkdf.Key(sha256.New, nameKey, nil, "moat/securestore name mac", 32)
	if err != nil {
		return nil, err
	}
	encKey, err := hkdf.Key(sha256.New, nameKey, nil, "moat/securestore name enc", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	idx := append([]byte(nil), indexKey...)
	n := &namer{block: block}
	n.macs.New = func() any { return hmac.New(sha256.New, macKey) }
	n.index.New = func() any { return hmac.New(sha256.New, idx) }
	return n, nil
}

// mac returns HMAC(key, kind || len(scope) || scope || msg) into out.
func mac(pool *sync.Pool, out []byte, kind byte, scope, msg string) []byte {
	h := pool.Get().(hash.Hash)
	h.Reset()
	var pre [2]byte
	pre[0], pre[1] = kind, byte(len(scope))
	h.Write(pre[:])
	h.Write([]byte(scope))
	h.Write([]byte(msg))
	out = h.Sum(out)
	pool.Put(h)
	return out
}

// seal returns the encrypted name of key under kind and scope (the
// collection name for documents, empty otherwise).
func (n *namer) seal(kind byte, scope, key string) string {
	buf := make([]byte, 0, sha256.Size+len(key))
	buf = mac(&n.macs, buf, kind, scope, key)[:ivSize]
	buf = buf[:ivSize+len(key)]
	cipher.NewCTR(n.block, buf[:ivSize]).XORKeyStream(buf[ivSize:], []byte(key))
	return nameEncoding.EncodeToString(buf)
}

// open decrypts an encrypted name and checks its authenticity.
func (n *namer) open(kind byte, scope, enc string) (string, error) {
	raw, err := nameEncoding.DecodeString(enc)
	if err != nil || len(raw) <= ivSize || len(raw) > ivSize+MaxKeyLen {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	key := make([]byte, len(raw)-ivSize)
	cipher.NewCTR(n.block, raw[:ivSize]).XORKeyStream(key, raw[ivSize:])
	want := mac(&n.macs, make([]byte, 0, sha256.Size), kind, scope, string(key))
	if subtle.ConstantTimeCompare(want[:ivSize], raw[:ivSize]) != 1 {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	return string(key), nil
}

// blind returns a short, stable, keyed stand-in for a collection name, so
// the collection's records share a listable prefix without showing it.
func (n *namer) blind(collection string) string {
	sum := mac(&n.macs, make([]byte, 0, sha256.Size), kindCollection, "", collection)
	return nameEncoding.EncodeToString(sum[:10])
}

// token returns the blind-index token of a normalized field value.
func (n *namer) token(collection, field string, value []byte) [tokenSize]byte {
	var t [tokenSize]byte
	sum := mac(&n.index, make([]byte, 0, sha256.Size), 'i', collection, field+"\x00"+string(value))
	copy(t[:], sum)
	return t
}

// tokenSize is the length of a blind-index token: 128 bits.
const tokenSize = 16

// validKey reports whether a key, id or collection name is acceptable.
func validKey(k string) bool { return k != "" && len(k) <= MaxKeyLen }
