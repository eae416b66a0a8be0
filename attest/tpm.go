package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/binary"
	"hash"
	"math/big"
	"slices"
)

// TPM 2.0 constants (TPM 2.0 Library, Part 2).
const (
	tpmGeneratedValue  = 0xff544347
	tpmSTAttestCertify = 0x8017
	tpmAlgRSA          = 0x0001
	tpmAlgSHA1         = 0x0004
	tpmAlgSHA256       = 0x000B
	tpmAlgSHA384       = 0x000C
	tpmAlgSHA512       = 0x000D
	tpmAlgNull         = 0x0010
	tpmAlgECC          = 0x0023
)

// tpmReader reads TPM's big-endian structures; any overrun sets bad.
type tpmReader struct {
	b   []byte
	bad bool
}

func (r *tpmReader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tpmReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *tpmReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// sized reads a TPM2B: a 16-bit length and that many bytes.
func (r *tpmReader) sized() []byte { return r.take(int(r.u16())) }

// done reports whether everything was read, exactly.
func (r *tpmReader) done() bool { return !r.bad && len(r.b) == 0 }

// tpmPublic is the part of a TPMT_PUBLIC this package uses.
type tpmPublic struct {
	nameAlg uint16
	key     crypto.PublicKey
}

func parseTPMPublic(b []byte) (*tpmPublic, error) {
	r := &tpmReader{b: b}
	typ := r.u16()
	p := &tpmPublic{nameAlg: r.u16()}
	r.u32()   // objectAttributes
	r.sized() // authPolicy
	symmetric := func() {
		if r.u16() != tpmAlgNull {
			r.u16() // keyBits
			r.u16() // mode
		}
	}
	scheme := func() {
		if r.u16() != tpmAlgNull {
			r.u16() // hashAlg
		}
	}
	switch typ {
	case tpmAlgRSA:
		symmetric()
		scheme()
		r.u16() // keyBits
		exp := r.u32()
		n := r.sized()
		if exp == 0 {
			exp = 65537
		}
		if !r.done() || len(n) < 256 || exp > 1<<31-1 {
			return nil, refuse(ErrMalformed, "TPM RSA pubArea")
		}
		p.key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	case tpmAlgECC:
		symmetric()
		scheme()
		curveID := r.u16()
		scheme() // kdf
		x, y := r.sized(), r.sized()
		curve := map[uint16]elliptic.Curve{3: elliptic.P256(), 4: elliptic.P384(), 5: elliptic.P521()}[curveID]
		if !r.done() || curve == nil {
			return nil, refuse(ErrMalformed, "TPM ECC pubArea")
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, refuse(ErrMalformed, "TPM ECC point: %v", err)
		}
		p.key = k
	default:
		return nil, refuse(ErrMalformed, "TPM key type %#x", typ)
	}
	return p, nil
}

// tpmAttest is the part of a TPMS_ATTEST (certify) this package uses.
type tpmAttest struct {
	extraData    []byte
	attestedName []byte
}

func parseTPMAttest(b []byte) (*tpmAttest, error) {
	r := &tpmReader{b: b}
	magic, typ := r.u32(), r.u16()
	r.sized() // qualifiedSigner
	a := &tpmAttest{extraData: r.sized()}
	r.take(8 + 4 + 4 + 1) // clockInfo
	r.take(8)             // firmwareVersion
	a.attestedName = r.sized()
	r.sized() // qualifiedName
	if !r.done() {
		return nil, refuse(ErrMalformed, "TPM certInfo")
	}
	if magic != tpmGeneratedValue || typ != tpmSTAttestCertify {
		return nil, refuse(ErrWebAuthn, "TPM certInfo is not a TPM-generated certify structure")
	}
	return a, nil
}

func tpmNameHash(alg uint16) func() hash.Hash {
	switch alg {
	case tpmAlgSHA1:
		return sha1.New
	case tpmAlgSHA256:
		return sha256.New
	case tpmAlgSHA384:
		return sha512.New384
	case tpmAlgSHA512:
		return sha512.New
	}
	return nil
}

// verifyTPM checks a "tpm" statement (WebAuthn §8.3).
func (s *webAuthnStatement) verifyTPM(f *stmtFields) error {
	if f.Ver != "2.0" || f.Alg == nil || len(f.Sig) == 0 || len(f.X5C) == 0 || len(f.CertInfo) == 0 || len(f.PubArea) == 0 {
		return refuse(ErrMalformed, "tpm statement lacks ver 2.0, alg, sig, x5c, certInfo or pubArea")
	}
	alg := *f.Alg
	if alg == coseRS1 && !s.opts.InsecureAllowSHA1 {
		return refuse(ErrAlgorithm, "RS1 (RSASSA-PKCS1-v1_5 with SHA-1) is not accepted")
	}
	pub, err := parseTPMPublic(f.PubArea)
	if err != nil {
		return err
	}
	if !samePublicKey(pub.key, s.pub) {
		return refuse(ErrKeyIDMismatch, "pubArea key is not the credential key")
	}
	ci, err := parseTPMAttest(f.CertInfo)
	if err != nil {
		return err
	}
	_, newHash := coseHash(alg)
	if newHash == nil {
		return refuse(ErrAlgorithm, "COSE algorithm %d", alg)
	}
	h := newHash()
	h.Write(s.ad.raw)
	h.Write(s.cdh)
	if subtle.ConstantTimeCompare(h.Sum(nil), ci.extraData) != 1 {
		return refuse(ErrNonceMismatch, "certInfo extraData is not the hash of authData || clientDataHash")
	}
	nameHash := tpmNameHash(pub.nameAlg)
	if nameHash == nil || (pub.nameAlg == tpmAlgSHA1 && !s.opts.InsecureAllowSHA1) {
		return refuse(ErrAlgorithm, "pubArea name algorithm %#x", pub.nameAlg)
	}
	nh := nameHash()
	nh.Write(f.PubArea)
	name := binary.BigEndian.AppendUint16(nil, pub.nameAlg)
	if !bytes.Equal(ci.attestedName, nh.Sum(name)) {
		return refuse(ErrWebAuthn, "certInfo does not certify pubArea")
	}
	if err := s.loadChain(f.X5C); err != nil {
		return err
	}
	aik := s.chain[0]
	if err := verifyCOSESignature(aik.PublicKey, alg, f.CertInfo, f.Sig, s.opts.InsecureAllowSHA1); err != nil {
		return err
	}
	emptyName := []byte{0x30, 0x00}
	if aik.Version != 3 || !bytes.Equal(aik.RawSubject, emptyName) || aik.IsCA ||
		!slices.ContainsFunc(aik.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(oidTCGKPAIKCertificate) }) {
		return refuse(ErrWebAuthn, "AIK certificate requirements (version 3, empty subject, not a CA, tcg-kp-AIKCertificate)")
	}
	return s.checkCertAAGUID(aik)
}
