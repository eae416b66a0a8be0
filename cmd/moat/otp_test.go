package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/stretchr/testify/require"
)

// The RFC vectors live with package stepup (copied from shared/testdata/otp
// with their sources in stepup/testdata/SOURCES.md).
func readOTPVectors(t *testing.T, name string) (secret string, vectors []map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "stepup", "testdata", name))
	require.NoError(t, err)
	var v struct {
		SecretASCII string           `json:"secret_ascii"`
		Vectors     []map[string]any `json:"vectors"`
	}
	require.NoError(t, json.Unmarshal(b, &v))
	return v.SecretASCII, v.Vectors
}

func base32Of(s string) string {
	// Lower case and without padding on purpose: the CLI normalizes.
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var out strings.Builder
	var buf, bits uint
	for i := 0; i < len(s); i++ {
		buf = buf<<8 | uint(s[i])
		bits += 8
		for bits >= 5 {
			out.WriteByte(alphabet[(buf>>(bits-5))&31])
			bits -= 5
		}
	}
	if bits > 0 {
		out.WriteByte(alphabet[(buf<<(5-bits))&31])
	}
	return out.String()
}

func TestOTPCodeVectors(t *testing.T) {
	t.Parallel()
	for file, alg := range map[string]string{
		"rfc6238_totp_sha1.json":   "SHA1",
		"rfc6238_totp_sha256.json": "SHA256",
		"rfc6238_totp_sha512.json": "SHA512",
	} {
		secret, vectors := readOTPVectors(t, file)
		for _, v := range vectors {
			at := strconv.FormatInt(int64(v["unix_time"].(float64)), 10)
			code, stdout, stderr := runCLI(t, "", nil, "otp", "code", "--secret", base32Of(secret), "--algorithm", alg, "--digits", "8", "--period", "30", "--at", at)
			require.Equal(t, exitOK, code, stderr)
			require.Equal(t, v["totp_8"].(string)+"\n", stdout, "%s at %s", alg, at)

			code, stdout, _ = runCLI(t, "", nil, "otp", "verify", "--secret", base32Of(secret), "--algorithm", alg, "--digits", "8", "--at", at, v["totp_8"].(string))
			require.Equal(t, exitOK, code)
			require.Contains(t, stdout, "valid: step")
		}
	}
	secret, vectors := readOTPVectors(t, "rfc4226_hotp.json")
	for _, v := range vectors {
		counter := strconv.Itoa(int(v["counter"].(float64)))
		code, stdout, stderr := runCLI(t, "", nil, "otp", "code", "--secret", base32Of(secret), "--hotp", "--counter", counter)
		require.Equal(t, exitOK, code, stderr)
		require.Equal(t, v["hotp_6"].(string)+"\n", stdout)
		code, stdout, _ = runCLI(t, "", nil, "otp", "verify", "--secret", base32Of(secret), "--hotp", "--counter", "0", v["hotp_6"].(string))
		require.Equal(t, exitOK, code)
		require.Equal(t, "valid: counter "+counter, strings.Fields(stdout)[0]+" "+strings.Fields(stdout)[1]+" "+strings.Fields(stdout)[2])
	}
}

func TestOTPVerifyRefuses(t *testing.T) {
	t.Parallel()
	s := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	code, stdout, _ := runCLI(t, "", nil, "otp", "verify", "--secret", s, "--digits", "8", "--at", "59", "00000000")
	require.Equal(t, exitRefused, code)
	require.Equal(t, "invalid\n", stdout)
	// Skew 0 refuses the neighbouring step; skew 1 accepts it.
	code, _, _ = runCLI(t, "", nil, "otp", "verify", "--secret", s, "--digits", "8", "--at", "89", "--skew", "0", "94287082")
	require.Equal(t, exitRefused, code)
	code, _, _ = runCLI(t, "", nil, "otp", "verify", "--secret", s, "--digits", "8", "--at", "89", "94287082")
	require.Equal(t, exitOK, code)
	// HOTP looks only forward.
	code, _, _ = runCLI(t, "", nil, "otp", "verify", "--secret", s, "--hotp", "--counter", "2", "287082")
	require.Equal(t, exitRefused, code)
}

func TestOTPUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"otp"},
		{"otp", "bogus"},
		{"otp", "code"},
		{"otp", "code", "--secret", "not base32!"},
		{"otp", "code", "--secret", "GEZA", "--algorithm", "MD5"},
		{"otp", "code", "--secret", "GEZA", "--digits", "9"},
		{"otp", "code", "--secret", "GEZA", "--at", "yesterday"},
		{"otp", "code", "--secret", "GEZA", "extra"},
		{"otp", "verify", "--secret", "GEZA"},
		{"otp", "verify", "--secret", "GEZA", "--skew", "5", "123456"},
		{"otp", "uri", "--issuer", "X"},
		{"otp", "qr", "--issuer", "X", "--account", "y"},
	} {
		code, _, stderr := runCLI(t, "", nil, args...)
		require.Equal(t, exitUsage, code, "%v: %s", args, stderr)
	}
	code, stdout, _ := runCLI(t, "", nil, "otp", "--help")
	require.Equal(t, exitOK, code)
	for _, sub := range []string{"uri", "qr", "code", "verify"} {
		require.Contains(t, stdout, sub)
	}
}

func TestOTPSecretFromEnvironment(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "", map[string]string{"MOAT_OTP_SECRET": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}, "otp", "code", "--hotp", "--counter", "1")
	require.Equal(t, exitOK, code)
	require.Equal(t, "287082\n", stdout)
}

func TestOTPURIAndQR(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "", nil, "otp", "uri", "--issuer", "Travel Co", "--account", "alice@example.com",
		"--secret", "gezd-gnbv-gy3t-qojq-gezd-gnbv-gy3t-qojq", "--algorithm", "sha256", "--digits", "8")
	require.Equal(t, exitOK, code)
	k, err := otp.NewKeyFromURL(strings.TrimSpace(stdout))
	require.NoError(t, err)
	require.Equal(t, "totp", k.Type())
	require.Equal(t, "Travel Co", k.Issuer())
	require.Equal(t, "alice@example.com", k.AccountName())
	require.Equal(t, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", k.Secret())
	require.Equal(t, otp.AlgorithmSHA256, k.Algorithm())
	require.Equal(t, otp.DigitsEight, k.Digits())

	code, stdout, _ = runCLI(t, "", nil, "otp", "uri", "--issuer", "X", "--account", "y", "--hotp", "--counter", "7")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "otpauth://hotp/")
	require.Contains(t, stdout, "counter=7")

	out := filepath.Join(t.TempDir(), "qr.png")
	code, _, stderr := runCLI(t, "", nil, "otp", "qr", "--issuer", "X", "--account", "y", "--secret", "GEZA", "--out", out, "--size", "128")
	require.Equal(t, exitOK, code, stderr)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, 128, img.Bounds().Dx())

	code, stdout, _ = runCLI(t, "", nil, "otp", "qr", "--issuer", "X", "--account", "y", "--out", "-")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(stdout, "\x89PNG"))
}

// TestOTPRefusesMistakes: a zero period, and an issuer with a colon (the
// label ISSUER:ACCOUNT would be ambiguous), are usage errors.
func TestOTPRefusesMistakes(t *testing.T) {
	for _, args := range [][]string{
		{"otp", "code", "--secret", "JBSWY3DPEHPK3PXP", "--period", "0"},
		{"otp", "code", "--secret", "JBSWY3DPEHPK3PXP", "--digits", "0"},
		{"otp", "uri", "--issuer", "A:B", "--account", "x@y"},
	} {
		code, _, _ := runCLI(t, "", nil, args...)
		require.Equal(t, 2, code, "%v", args)
	}
}
