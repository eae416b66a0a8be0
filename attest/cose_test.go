package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"
)

func TestCOSEKeysAndSignatures(t *testing.T) {
	t.Parallel()
	msg := []byte("signed data")
	d256 := sha256.Sum256(msg)
	d1 := sha1.Sum(msg)

	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	ecSig, err := ecdsa.SignASN1(rand.Reader, ec384, sha384(msg))
	require.NoError(t, err)
	pt, _ := ec384.PublicKey.Bytes()
	ecCOSE, _ := cbor.Marshal(map[int]any{1: 2, 3: coseES384, -1: 2, -2: pt[1:49], -3: pt[49:]})

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edCOSE, _ := cbor.Marshal(map[int]any{1: 1, 3: coseEdDSA, -1: 6, -2: []byte(edPub)})

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaCOSE, _ := cbor.Marshal(map[int]any{1: 3, 3: cosePS256, -1: rk.N.Bytes(), -2: big.NewInt(int64(rk.E)).Bytes()})
	pss, err := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d256[:], nil)
	require.NoError(t, err)
	pkcs1sha1, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA1, d1[:])
	require.NoError(t, err)

	for _, c := range []struct {
		name      string
		key       []byte
		alg       int64
		sig       []byte
		allowSHA1 bool
		err       error
	}{
		{name: "ES384", key: ecCOSE, alg: coseES384, sig: ecSig},
		{name: "EdDSA", key: edCOSE, alg: coseEdDSA, sig: ed25519.Sign(edPriv, msg)},
		{name: "PS256", key: rsaCOSE, alg: cosePS256, sig: pss},
		{name: "RS1 allowed", key: rsaCOSE, alg: coseRS1, sig: pkcs1sha1, allowSHA1: true},
		{name: "RS1 refused", key: rsaCOSE, alg: coseRS1, sig: pkcs1sha1, err: ErrAlgorithm},
		{name: "PS256 bad signature", key: rsaCOSE, alg: cosePS256, sig: pkcs1sha1, err: ErrSignature},
		{name: "EC key with RSA alg", key: ecCOSE, alg: coseRS256, sig: ecSig, err: ErrAlgorithm},
		{name: "RSA key with EC alg", key: rsaCOSE, alg: coseES256, sig: pss, err: ErrAlgorithm},
		{name: "unknown alg", key: ecCOSE, alg: -999, sig: ecSig, err: ErrAlgorithm},
		{name: "EdDSA wrong key", key: ecCOSE, alg: coseEdDSA, sig: ecSig, err: ErrSignature},
	} {
		pub, _, err := parseCOSEKey(c.key)
		require.NoError(t, err, c.name)
		err = verifyCOSESignature(pub, c.alg, msg, c.sig, c.allowSHA1)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, c.name)
		} else {
			require.NoError(t, err, c.name)
		}
	}
	for name, m := range map[string]map[int]any{
		"no kty":       {3: -7},
		"bad curve":    {1: 2, 3: -7, -1: 9, -2: pt[1:49], -3: pt[49:]},
		"short coords": {1: 2, 3: -7, -1: 1, -2: []byte{1}, -3: []byte{2}},
		"off curve":    {1: 2, 3: -7, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)},
		"small RSA":    {1: 3, 3: -257, -1: []byte{1, 2, 3}, -2: []byte{1, 0, 1}},
		"OKP X25519":   {1: 1, 3: -8, -1: 4, -2: make([]byte, 32)},
		"symmetric":    {1: 4, 3: 5},
	} {
		b, _ := cbor.Marshal(m)
		_, _, err := parseCOSEKey(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func sha384(b []byte) []byte {
	_, h := coseHash(coseES384)
	hh := h()
	hh.Write(b)
	return hh.Sum(nil)
}

func TestSmallTypes(t *testing.T) {
	t.Parallel()
	for _, l := range []SecurityLevel{SecuritySoftware, SecurityTEE, SecurityStrongBox} {
		got, ok := ParseSecurityLevel(l.String())
		require.True(t, ok)
		require.Equal(t, l, got)
	}
	_, ok := ParseSecurityLevel("unknown")
	require.False(t, ok)
	require.Equal(t, "required", Required.String())
	require.Equal(t, "optional", Optional.String())
	require.Equal(t, "off", Off.String())
	require.Equal(t, "Requirement(7)", Requirement(7).String())
	require.Equal(t, "UNKNOWN(9)", VerifiedBootState(9).String())
	require.Empty(t, (*Result)(nil).PublicKeyPEM())
	require.Nil(t, (*Result)(nil).Facts())
	k := newKey(t)
	require.Contains(t, (&Result{PublicKey: &k.PublicKey}).PublicKeyPEM(), "BEGIN PUBLIC KEY")
	e := &Error{Code: CodeInvalidAttestation, Reason: ErrSignature}
	require.Equal(t, "moat/attest: signature does not verify", e.Error())
}
