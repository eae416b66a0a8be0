package securestore

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"hash"
	"sync"
)

// Backend names hide the keys and ids they stand for. A name is the
// AES-SIV encryption (RFC 5297, deterministic authenticated encryption) of
// the key, with its kind and scope (the collection, for documents) as
// associated data, in lower-case base32: equal keys give equal names
// (that is what lets Get find a record), the length of a key shows, and
// nothing else about it does. The name is also authenticated as
// additional data of its record, so records cannot be moved between
// names.
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

// namer encrypts and decrypts names and computes keyed hashes.
type namer struct {
	siv *sivCipher
	// kvAD is the S2V state for key-value names, computed once.
	kvAD   [16]byte
	states sync.Pool // of *nameState
	macs   sync.Pool // of *macState keyed with the name MAC key
	index  sync.Pool // of *macState keyed with the index key
}

// nameState is scratch space for one name, pooled so that computing a
// name allocates only the resulting string.
type nameState struct {
	siv              sivState
	ad, pt, raw, out []byte
}

// macState is a keyed HMAC with scratch space.
type macState struct {
	h       hash.Hash
	in, sum []byte
}

func newNamer(nameKey, indexKey []byte) (*namer, error) {
	sivKey, err := hkdf.Key(sha256.New, nameKey, nil, "moat/securestore name siv", 64)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, nameKey, nil, "moat/securestore name mac", 32)
	if err != nil {
		return nil, err
	}
	siv, err := newSIV(sivKey)
	if err != nil {
		return nil, err
	}
	idx := append([]byte(nil), indexKey...)
	n := &namer{siv: siv}
	n.kvAD = siv.s2vAD(new(sivState), []byte{kindKV})
	n.states.New = func() any { return new(nameState) }
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

// seal returns prefix followed by the encrypted name of key under kind
// and scope (the collection name for documents, empty otherwise).
func (n *namer) seal(prefix string, kind byte, scope, key string) string {
	st := n.states.Get().(*nameState)
	st.pt = append(st.pt[:0], key...)
	st.raw = n.siv.seal(&st.siv, st.raw[:0], n.adState(st, kind, scope), st.pt)
	st.out = nameEncoding.AppendEncode(append(st.out[:0], prefix...), st.raw)
	name := string(st.out)
	n.states.Put(st)
	return name
}

// adState returns the S2V state for the associated data kind || scope.
func (n *namer) adState(st *nameState, kind byte, scope string) [16]byte {
	if kind == kindKV && scope == "" {
		return n.kvAD
	}
	st.ad = append(append(st.ad[:0], kind), scope...)
	return n.siv.s2vAD(&st.siv, st.ad)
}

// open decrypts an encrypted name and checks its authenticity.
func (n *namer) open(kind byte, scope, enc string) (string, error) {
	st := n.states.Get().(*nameState)
	defer n.states.Put(st)
	raw, err := nameEncoding.AppendDecode(st.raw[:0], []byte(enc))
	if err != nil || len(raw) <= ivSize || len(raw) > ivSize+MaxKeyLen {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	st.raw = raw
	// Base32 without padding ignores a final character's unused bits:
	// only the canonical spelling of a name is the name.
	st.out = nameEncoding.AppendEncode(st.out[:0], raw)
	if string(st.out) != enc {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	key, err := n.siv.open(&st.siv, st.out[:0], n.adState(st, kind, scope), raw)
	if err != nil {
		return "", fmt.Errorf("%w: bad record name", ErrCorruptRecord)
	}
	st.out = key
	return string(key), nil
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
