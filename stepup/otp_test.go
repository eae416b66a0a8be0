package stepup_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/stepup"
)

type otpVectors struct {
	SecretASCII string `json:"secret_ascii"`
	Digits      int    `json:"digits"`
	Vectors     []struct {
		Counter  uint64 `json:"counter"`
		HOTP     string `json:"hotp_6"`
		UnixTime int64  `json:"unix_time"`
		TOTP     string `json:"totp_8"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB, name string) otpVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	var v otpVectors
	require.NoError(t, json.Unmarshal(b, &v))
	require.NotEmpty(t, v.Vectors)
	return v
}

// The vectors in testdata are copies of the workspace's shared ones
// (../shared/testdata/otp next to the repository); when that directory is
// there, the copies must not have drifted from it.
func TestVectorsMatchShared(t *testing.T) {
	t.Parallel()
	shared := filepath.Join("..", "..", "shared", "testdata", "otp")
	if _, err := os.Stat(shared); err != nil {
		t.Skip("no shared test data next to the repository")
	}
	for _, name := range []string{"rfc4226_hotp.json", "rfc6238_totp_sha1.json", "rfc6238_totp_sha256.json"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "testdata/%s differs from the shared copy", name)
	}
}

func TestHOTPVectors(t *testing.T) {
	t.Parallel()
	v := loadVectors(t, "rfc4226_hotp.json")
	k := stepup.OTPKey{Secret: []byte(v.SecretASCII), Digits: v.Digits}
	for _, tv := range v.Vectors {
		code, err := k.HOTP(tv.Counter)
		require.NoError(t, err)
		require.Equal(t, tv.HOTP, code)
		c, ok := k.VerifyHOTP(tv.HOTP, 0, 9)
		require.True(t, ok)
		require.Equal(t, tv.Counter, c)
	}
}

func TestTOTPVectors(t *testing.T) {
	t.Parallel()
	for file, alg := range map[string]stepup.Algorithm{
		"rfc6238_totp_sha1.json":   stepup.SHA1,
		"rfc6238_totp_sha256.json": stepup.SHA256,
		"rfc6238_totp_sha512.json": stepup.SHA512,
	} {
		v := loadVectors(t, file)
		require.Len(t, v.SecretASCII, alg.SeedSize(), "RFC 6238 erratum 2866: one seed length per hash")
		k := stepup.OTPKey{Secret: []byte(v.SecretASCII), Algorithm: alg, Digits: 8}
		for _, tv := range v.Vectors {
			at := time.Unix(tv.UnixTime, 0)
			code, err := k.TOTP(at)
			require.NoError(t, err)
			require.Equal(t, tv.TOTP, code, "%s at %d", alg, tv.UnixTime)
			step, ok := k.VerifyTOTP(tv.TOTP, at, 0, -1)
			require.True(t, ok, "%s at %d", alg, tv.UnixTime)
			require.Equal(t, tv.UnixTime/30, step)
			// With skew 1 the code is also accepted one step before and after.
			_, ok = k.VerifyTOTP(tv.TOTP, at.Add(30*time.Second), 1, -1)
			require.True(t, ok)
			_, ok = k.VerifyTOTP(tv.TOTP, at.Add(-30*time.Second), 1, -1)
			require.True(t, ok)
			_, ok = k.VerifyTOTP(tv.TOTP, at.Add(60*time.Second), 1, -1)
			require.False(t, ok)
		}
	}
}

// The own verification path agrees with pquerna/otp's generation for
// random keys of every length around the hash block sizes.
func TestVerifyAgreesWithGeneration(t *testing.T) {
	t.Parallel()
	for _, alg := range []stepup.Algorithm{stepup.SHA1, stepup.SHA256, stepup.SHA512} {
		for _, n := range []int{1, 10, 20, 32, 63, 64, 65, 127, 128, 129, 200} {
			secret := make([]byte, n)
			_, _ = rand.Read(secret)
			for _, digits := range []int{6, 7, 8} {
				k := stepup.OTPKey{Secret: secret, Algorithm: alg, Digits: digits}
				for c := uint64(0); c < 5; c++ {
					code, err := k.HOTP(c * 7919)
					require.NoError(t, err)
					got, ok := k.VerifyHOTP(code, c*7919, c*7919)
					require.True(t, ok, "%s len %d digits %d", alg, n, digits)
					require.Equal(t, c*7919, got)
				}
			}
		}
	}
}

// A fixed clock at seconds 29 and 30 of a step: skew 1 accepts the
// neighbouring steps, skew 0 only the current one.
func TestTOTPSkewAtStepBoundary(t *testing.T) {
	t.Parallel()
	k := stepup.OTPKey{Secret: []byte("12345678901234567890")}
	base := time.Unix(1_700_000_010, 0).Truncate(30 * time.Second) // second 0 of a step
	at29, at30 := base.Add(29*time.Second), base.Add(30*time.Second)
	codeNow, err := k.TOTP(at29)
	require.NoError(t, err)
	codeNext, err := k.TOTP(at30)
	require.NoError(t, err)
	require.NotEqual(t, codeNow, codeNext)

	for _, tc := range []struct {
		code string
		at   time.Time
		skew int
		ok   bool
	}{
		{codeNow, at29, 0, true},
		{codeNext, at29, 0, false},
		{codeNext, at29, 1, true}, // the phone's clock runs a second ahead
		{codeNow, at30, 0, false},
		{codeNow, at30, 1, true}, // typed at second 29, arrives at second 30
		{codeNow, at30.Add(30 * time.Second), 1, false},
	} {
		_, ok := k.VerifyTOTP(tc.code, tc.at, tc.skew, -1)
		require.Equal(t, tc.ok, ok, "%+v", tc)
	}
	// A step not newer than the last accepted one is refused.
	s, ok := k.VerifyTOTP(codeNow, at29, 1, -1)
	require.True(t, ok)
	_, ok = k.VerifyTOTP(codeNow, at29, 1, s)
	require.False(t, ok)
}

func TestVerifyRefusesBadInput(t *testing.T) {
	t.Parallel()
	k := stepup.OTPKey{Secret: []byte("12345678901234567890")}
	now := time.Unix(59, 0)
	for _, code := range []string{"", "12345", "1234567", "12345a", " 12345", "１２３４５６", "-12345"} {
		_, ok := k.VerifyTOTP(code, now, 1, -1)
		require.False(t, ok, code)
	}
	_, ok := k.VerifyTOTP("287082", time.Unix(-30, 0), 1, -1)
	require.False(t, ok, "times before 1970")
	_, ok = stepup.OTPKey{}.VerifyTOTP("287082", now, 1, -1)
	require.False(t, ok, "empty secret")
	_, ok = stepup.OTPKey{Secret: []byte("x"), Algorithm: "MD5"}.VerifyTOTP("287082", now, 1, -1)
	require.False(t, ok)
	_, err := stepup.OTPKey{Secret: []byte("x"), Digits: 9}.TOTP(now)
	require.Error(t, err)
	_, err = stepup.OTPKey{Secret: []byte("x"), Period: -1}.TOTP(now)
	require.Error(t, err)
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	const canonical = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	for _, in := range []string{
		canonical,
		"gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
		"GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
		"gezd-gnbv-gy3t-qojq-gezd-gnbv-gy3t-qojq",
	} {
		s, err := stepup.NormalizeSecret(in)
		require.NoError(t, err, in)
		require.Equal(t, canonical, s)
	}
	// Missing or present padding.
	b, err := stepup.ParseSecret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA====")
	require.NoError(t, err)
	require.Equal(t, "12345678901234567890123456789012", string(b))
	b2, err := stepup.ParseSecret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA")
	require.NoError(t, err)
	require.Equal(t, b, b2)

	for _, in := range []string{"", "   ", "----", "====", "GEZDGNBVGY3TQOJ1", "GEZDGNBVGY3TQOJ8", "GEZ!", "GEZDGNBV=GY3TQOJQ", "GEZDGNBVGY3TQOJQGEZA=", "Ä"} {
		_, err := stepup.ParseSecret(in)
		require.ErrorIs(t, err, stepup.ErrInvalidSecret, "%q", in)
	}
}

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "gezd-gnbv gy3t", "GEZA====", "", "====", "GEZ!", "A", "AB======"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := stepup.ParseSecret(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, b)
		// The canonical form parses back to the same secret.
		b2, err := stepup.ParseSecret(stepup.EncodeSecret(b))
		require.NoError(t, err)
		require.Equal(t, b, b2)
	})
}

func FuzzVerifyTOTP(f *testing.F) {
	f.Add([]byte("12345678901234567890"), "94287082", int64(59), uint8(8), uint8(0))
	f.Add([]byte("12345678901234567890123456789012"), "46119246", int64(59), uint8(8), uint8(1))
	f.Add([]byte{}, "", int64(-1), uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, secret []byte, code string, at int64, digits, alg uint8) {
		a := []stepup.Algorithm{stepup.SHA1, stepup.SHA256, stepup.SHA512, "bogus"}[alg%4]
		k := stepup.OTPKey{Secret: secret, Algorithm: a, Digits: int(digits % 10)}
		step, ok := k.VerifyTOTP(code, time.Unix(at, 0), 1, -1)
		if !ok {
			return
		}
		want, err := k.HOTP(uint64(step))
		require.NoError(t, err)
		require.Equal(t, want, code, fmt.Sprintf("step %d", step))
	})
}
