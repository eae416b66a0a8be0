package securestore

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// RFC 5297 appendix A.1, the deterministic authenticated encryption
// example: one associated-data string.
func TestSIVVectorA1(t *testing.T) {
	t.Parallel()
	s, err := newSIV(unhex(t, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
	require.NoError(t, err)
	ad := unhex(t, "101112131415161718191a1b1c1d1e1f2021222324252627")
	pt := unhex(t, "112233445566778899aabbccddee")
	var st sivState
	d := s.s2vAD(&st, ad)
	out := s.seal(&st, nil, d, pt)
	require.Equal(t, "85632d07c6e8f37f950acd320a2ecc93"+"40c02b9690c4dc04daef7f6afe5c", hex.EncodeToString(out))
	got, err := s.open(&st, nil, d, out)
	require.NoError(t, err)
	require.Equal(t, pt, got)
	for i := range out {
		bad := append([]byte(nil), out...)
		bad[i] ^= 1
		_, err := s.open(&st, nil, d, bad)
		require.Error(t, err)
	}
	_, err = s.open(&st, nil, s.s2vAD(&st, pt), out)
	require.Error(t, err, "bound to its associated data")
}

// RFC 4493 section 4's AES-128 CMAC examples check the CMAC under S2V.
func TestCMACVectors(t *testing.T) {
	t.Parallel()
	s, err := newSIV(append(unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"), make([]byte, 16)...))
	require.NoError(t, err)
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	var st sivState
	for n, want := range map[int]string{
		0:  "bb1d6929e95937287fa37d129b756746",
		16: "070a16b46b4d4144f79bdd9dd04a287c",
		40: "dfa66747de9ae63030ca32611497c827",
		64: "51f0bebf7e3b9d92fc49741779363cfe",
	} {
		got := s.cmac(&st, msg[:n])
		require.Equal(t, want, hex.EncodeToString(got[:]), "%d bytes", n)
	}
}
