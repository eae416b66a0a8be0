package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

// COSE algorithm identifiers (RFC 9053, IANA COSE registry) this package
// verifies.
const (
	coseES256 = -7
	coseES384 = -35
	coseES512 = -36
	coseEdDSA = -8
	coseRS256 = -257
	coseRS384 = -258
	coseRS512 = -259
	cosePS256 = -37
	coseRS1   = -65535
)

// parseCOSEKey decodes a COSE_Key (EC2, RSA or OKP Ed25519) and returns it
// with its "alg".
func parseCOSEKey(b []byte) (crypto.PublicKey, int64, error) {
	var m map[int64]cbor.RawMessage
	if err := cborDec.Unmarshal(b, &m); err != nil {
		return nil, 0, refuse(ErrMalformed, "COSE key: %v", err)
	}
	getInt := func(label int64) (int64, bool) {
		var v int64
		raw, ok := m[label]
		return v, ok && cborDec.Unmarshal(raw, &v) == nil
	}
	getBytes := func(label int64) []byte {
		var v []byte
		if raw, ok := m[label]; ok && cborDec.Unmarshal(raw, &v) == nil {
			return v
		}
		return nil
	}
	kty, ok1 := getInt(1)
	alg, ok2 := getInt(3)
	if !ok1 || !ok2 {
		return nil, 0, refuse(ErrMalformed, "COSE key lacks kty or alg")
	}
	switch kty {
	case 2: // EC2
		crv, _ := getInt(-1)
		curve, size := map[int64]elliptic.Curve{1: elliptic.P256(), 2: elliptic.P384(), 3: elliptic.P521()}[crv], 0
		if curve == nil {
			return nil, 0, refuse(ErrMalformed, "COSE EC2 curve %d", crv)
		}
		size = (curve.Params().BitSize + 7) / 8
		x, y := getBytes(-2), getBytes(-3)
		if len(x) != size || len(y) != size {
			return nil, 0, refuse(ErrMalformed, "COSE EC2 coordinates")
		}
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, 0, refuse(ErrMalformed, "COSE EC2 point: %v", err)
		}
		return pub, alg, nil
	case 3: // RSA
		n, e := getBytes(-1), getBytes(-2)
		if len(n) < 256 || len(n) > 1024 || len(e) == 0 || len(e) > 4 {
			return nil, 0, refuse(ErrMalformed, "COSE RSA key size")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, alg, nil
	case 1: // OKP
		crv, _ := getInt(-1)
		x := getBytes(-2)
		if crv != 6 || len(x) != ed25519.PublicKeySize {
			return nil, 0, refuse(ErrMalformed, "COSE OKP key is not Ed25519")
		}
		return ed25519.PublicKey(x), alg, nil
	}
	return nil, 0, refuse(ErrMalformed, "COSE key type %d", kty)
}

// coseHash returns the hash of a COSE signature algorithm.
func coseHash(alg int64) (crypto.Hash, func() hash.Hash) {
	switch alg {
	case coseES256, coseRS256, cosePS256:
		return crypto.SHA256, sha256.New
	case coseES384, coseRS384:
		return crypto.SHA384, sha512.New384
	case coseES512, coseRS512:
		return crypto.SHA512, sha512.New
	case coseRS1:
		return crypto.SHA1, sha1.New
	}
	return 0, nil
}

// verifyCOSESignature checks sig over msg by pub with COSE algorithm alg.
// SHA-1 (RS1) is refused unless allowSHA1.
func verifyCOSESignature(pub crypto.PublicKey, alg int64, msg, sig []byte, allowSHA1 bool) error {
	if alg == coseRS1 && !allowSHA1 {
		return refuse(ErrAlgorithm, "RS1 (RSASSA-PKCS1-v1_5 with SHA-1) is not accepted")
	}
	if alg == coseEdDSA {
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, msg, sig) {
			return refuse(ErrSignature, "EdDSA signature")
		}
		return nil
	}
	h, newHash := coseHash(alg)
	if newHash == nil {
		return refuse(ErrAlgorithm, "COSE algorithm %d", alg)
	}
	hh := newHash()
	hh.Write(msg)
	digest := hh.Sum(nil)
	var err error
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg != coseES256 && alg != coseES384 && alg != coseES512 {
			return refuse(ErrAlgorithm, "algorithm %d with an EC key", alg)
		}
		if !ecdsa.VerifyASN1(k, digest, sig) {
			err = errors.New("ecdsa")
		}
	case *rsa.PublicKey:
		switch alg {
		case cosePS256:
			err = rsa.VerifyPSS(k, h, digest, sig, nil)
		case coseRS1, coseRS256, coseRS384, coseRS512:
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		default:
			return refuse(ErrAlgorithm, "algorithm %d with an RSA key", alg)
		}
	default:
		return refuse(ErrAlgorithm, "algorithm %d with a %T key", alg, pub)
	}
	if err != nil {
		return refuse(ErrSignature, "attestation statement signature (COSE alg %d)", alg)
	}
	return nil
}

// samePublicKey reports whether a and b are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
