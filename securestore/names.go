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
	macs  sync.Pool // of *macState keyed with the name MAC key
	index sync.Pool // of *macState keyed with the index key
}

// macState is a keyed HMAC with scratch space, pooled so that computing
// a name allocates only the resulting string.
type macState struct {
	h        hash.Hash
	in, sum  []byte
	raw, out []byte
	ctr, ks  [aes.BlockSize]byte
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
	n.macs.New = func() any { return &macState{h: hmac.New(sha256.New, macKey)} }
	n.index.New = func() any { return &macState{h: hmac.New(sha256.New, idx)} }
	return n, nil
}

// mac sets st.sum to HMAC(key, kind || len(scope) || scope || msg).
func (st *macState) mac(kind byte, scope, msg string) {
	st.in = append(st.in[:0], kind, byte(len(scope)))
	st.in = append(append(st.in, scope...), msg...)
	st.h.Reset()
	st.h.Write(st.in)
	st.sum = st.h.Sum(st.sum[:0])
}

// ctr XORs data in place with the AES-CTR keystream from iv.
func (st *macState) ctrXOR(block cipher.Block, iv, data []byte) {
	copy(st.ctr[:], iv)
	for len(data) > 0 {
		block.Encrypt(st.ks[:], st.ctr[:])
		n := subtle.XORBytes(data, data, st.ks[:])
		data = data[n:]
		for i := len(st.ctr) - 1; i >= 0; i-- {
			st.ctr[i]++
			if st.ctr[i] != 0 {
				break
			}
		}
	}
}

// seal returns prefix followed by the encrypted name of key under kind
// and scope (the collection name for documents, empty otherwise).
func (n *namer) seal(prefix string, kind byte, scope, key string) string {
	st := n.macs.Get().(*macState)
	st.mac(kind, scope, key)
	st.raw = append(append(st.raw[:0], st.sum[:ivSize]...), key...)
	st.ctrXOR(n.block, st.raw[:ivSize], st.raw[ivSize:])
	st.out = nameEncoding.AppendEncode(append(st.out[:0], prefix...), st.raw)
	name := string(st.out)
	n.macs.Put(st)
	return name
}

// open decrypts an encrypted name and checks its authenticity.
func (n *namer) open(kind byte, scope, enc string) (string, error) {
	raw, err := nameEncoding.DecodeString(enc)
	if err != nil || len(raw) <= ivSize || len(raw) > ivSize+MaxKeyLen {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	st := n.macs.Get().(*macState)
	defer n.macs.Put(st)
	st.ctrXOR(n.block, raw[:ivSize], raw[ivSize:])
	key := string(raw[ivSize:])
	st.mac(kind, scope, key)
	if subtle.ConstantTimeCompare(st.sum[:ivSize], raw[:ivSize]) != 1 {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	return key, nil
}

// blind returns a short, stable, keyed stand-in for a collection name, so
// the collection's records share a listable prefix without showing it.
func (n *namer) blind(collection string) string {
	st := n.macs.Get().(*macState)
	defer n.macs.Put(st)
	st.mac(kindCollection, "", collection)
	return nameEncoding.EncodeToString(st.sum[:10])
}

// token returns the blind-index token of a normalized field value.
func (n *namer) token(collection, field string, value []byte) [tokenSize]byte {
	st := n.index.Get().(*macState)
	defer n.index.Put(st)
	st.mac('i', collection, field+"\x00"+string(value))
	var t [tokenSize]byte
	copy(t[:], st.sum)
	return t
}

// tokenSize is the length of a blind-index token: 128 bits.
const tokenSize = 16

// validKey reports whether a key, id or collection name is acceptable.
func validKey(k string) bool { return k != "" && len(k) <= MaxKeyLen }
