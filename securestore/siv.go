package securestore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// sivCipher is AES-SIV (RFC 5297): deterministic authenticated encryption
// with S2V over AES-CMAC (RFC 4493) and AES-CTR. It hides record names:
// equal keys give equal names, and nothing else about a key shows but its
// length.
//
// Methods use the scratch space of a sivState, so a sivCipher is shared
// and each goroutine brings its own state.
type sivCipher struct {
	mac, ctr cipher.Block
	// k1, k2 are the CMAC subkeys; d0 is CMAC of a zero block, S2V's start.
	k1, k2, d0 [aes.BlockSize]byte
}

// sivState is per-call scratch space.
type sivState struct {
	x, m, blk, ctr [aes.BlockSize]byte
	t              []byte
}

var errSIV = errors.New("moat/securestore: SIV authentication failed")

// newSIV takes a key of 32 bytes (AES-128 for both halves, as in RFC
// 5297's examples) or 64 bytes (AES-256): the first half keys S2V, the
// second CTR.
func newSIV(key []byte) (*sivCipher, error) {
	if len(key) != 32 && len(key) != 64 {
		return nil, ErrInvalidKey
	}
	half := len(key) / 2
	mac, err := aes.NewCipher(key[:half])
	if err != nil {
		return nil, err
	}
	ctr, err := aes.NewCipher(key[half:])
	if err != nil {
		return nil, err
	}
	s := &sivCipher{mac: mac, ctr: ctr}
	var l [aes.BlockSize]byte
	mac.Encrypt(l[:], l[:])
	s.k1 = dbl(l)
	s.k2 = dbl(s.k1)
	var st sivState
	var zero [aes.BlockSize]byte
	s.d0 = s.cmac(&st, zero[:])
	return s, nil
}

// xor16 sets dst to a XOR b, for one AES block.
func xor16(dst, a, b []byte) {
	_, _, _ = dst[15], a[15], b[15]
	binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(a)^binary.LittleEndian.Uint64(b))
	binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(a[8:])^binary.LittleEndian.Uint64(b[8:]))
}

// dbl is multiplication by x in GF(2^128) (RFC 5297 section 2.3).
func dbl(b [aes.BlockSize]byte) [aes.BlockSize]byte {
	var out [aes.BlockSize]byte
	carry := b[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		out[i] = b[i]<<1 | b[i+1]>>7
	}
	out[aes.BlockSize-1] = b[aes.BlockSize-1]<<1 ^ 0x87*carry
	return out
}

// cmac returns AES-CMAC (RFC 4493) of msg.
func (s *sivCipher) cmac(st *sivState, msg []byte) [aes.BlockSize]byte {
	st.x = [aes.BlockSize]byte{}
	for len(msg) > aes.BlockSize {
		xor16(st.x[:], st.x[:], msg)
		s.mac.Encrypt(st.x[:], st.x[:])
		msg = msg[aes.BlockSize:]
	}
	// The last block: complete, xored with K1; or padded, xored with K2.
	if len(msg) == aes.BlockSize {
		xor16(st.m[:], msg, s.k1[:])
	} else {
		st.m = s.k2
		subtle.XORBytes(st.m[:len(msg)], st.m[:len(msg)], msg)
		st.m[len(msg)] ^= 0x80
	}
	xor16(st.x[:], st.x[:], st.m[:])
	s.mac.Encrypt(st.x[:], st.x[:])
	return st.x
}

// s2vAD is the S2V state after one associated-data string:
// dbl(CMAC(<zero>)) XOR CMAC(ad). It depends on the key and ad alone, so
// callers that reuse an ad compute it once.
func (s *sivCipher) s2vAD(st *sivState, ad []byte) [aes.BlockSize]byte {
	d := dbl(s.d0)
	c := s.cmac(st, ad)
	xor16(d[:], d[:], c[:])
	return d
}

// s2v finishes RFC 5297's S2V over the plaintext from the state d that
// s2vAD returned.
func (s *sivCipher) s2v(st *sivState, d [aes.BlockSize]byte, plaintext []byte) [aes.BlockSize]byte {
	if len(plaintext) >= aes.BlockSize {
		st.t = append(st.t[:0], plaintext...)
		tail := st.t[len(st.t)-aes.BlockSize:]
		xor16(tail, tail, d[:])
		return s.cmac(st, st.t)
	}
	d = dbl(d)
	st.t = append(st.t[:0], plaintext...)
	st.t = append(st.t, 0x80)
	for len(st.t) < aes.BlockSize {
		st.t = append(st.t, 0)
	}
	xor16(st.t, st.t, d[:])
	return s.cmac(st, st.t)
}

// xorCTR XORs data in place with the AES-CTR keystream for the synthetic
// IV v, its bits 63 and 31 cleared as RFC 5297 section 2.5 asks.
func (s *sivCipher) xorCTR(st *sivState, v [aes.BlockSize]byte, data []byte) {
	st.ctr = v
	st.ctr[8] &= 0x7f
	st.ctr[12] &= 0x7f
	for len(data) > 0 {
		s.ctr.Encrypt(st.blk[:], st.ctr[:])
		n := subtle.XORBytes(data, data, st.blk[:])
		data = data[n:]
		for i := aes.BlockSize - 1; i >= 0; i-- {
			st.ctr[i]++
			if st.ctr[i] != 0 {
				break
			}
		}
	}
}

// seal appends V || C to dst; d is s2vAD of the associated data.
func (s *sivCipher) seal(st *sivState, dst []byte, d [aes.BlockSize]byte, plaintext []byte) []byte {
	v := s.s2v(st, d, plaintext)
	dst = append(dst, v[:]...)
	start := len(dst)
	dst = append(dst, plaintext...)
	s.xorCTR(st, v, dst[start:])
	return dst
}

// open authenticates and decrypts V || C, appending the plaintext to dst;
// d is s2vAD of the associated data.
func (s *sivCipher) open(st *sivState, dst []byte, d [aes.BlockSize]byte, sealed []byte) ([]byte, error) {
	if len(sealed) < aes.BlockSize {
		return nil, errSIV
	}
	var v [aes.BlockSize]byte
	copy(v[:], sealed)
	start := len(dst)
	dst = append(dst, sealed[aes.BlockSize:]...)
	s.xorCTR(st, v, dst[start:])
	want := s.s2v(st, d, dst[start:])
	if subtle.ConstantTimeCompare(want[:], v[:]) != 1 {
		clear(dst[start:])
		return nil, errSIV
	}
	return dst, nil
}
