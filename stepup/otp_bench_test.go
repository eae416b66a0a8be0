package stepup_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/moatsec/moat/stepup"
)

var benchSink uint32

// BenchmarkTOTPVerify compares moat's TOTP verification (skew 1) with the
// floor: one HMAC-SHA1 and its truncation written by hand. Targets: moat ≤
// 1.2× the floor for a valid code, ≤ 1.5× for an invalid one (which must
// try all three steps). pquerna/otp's Validate is shown for reference.
func BenchmarkTOTPVerify(b *testing.B) {
	secret := []byte("12345678901234567890")
	at := time.Unix(1_700_000_000, 0)
	k := stepup.OTPKey{Secret: secret}
	valid, err := k.TOTP(at)
	if err != nil {
		b.Fatal(err)
	}
	invalid := "000000"
	if invalid == valid {
		invalid = "111111"
	}
	b.Run("floor-hmac-sha1", func(b *testing.B) {
		b.ReportAllocs()
		var msg [8]byte
		for b.Loop() {
			m := hmac.New(sha1.New, secret)
			binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
			m.Write(msg[:])
			s := m.Sum(nil)
			off := s[len(s)-1] & 0x0f
			benchSink = (binary.BigEndian.Uint32(s[off:]) & 0x7fffffff) % 1000000
		}
	})
	for _, c := range []struct{ name, code string }{{"valid", valid}, {"invalid", invalid}} {
		b.Run("moat/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, _ := k.VerifyTOTP(c.code, at, 1, -1)
				benchSink = uint32(s)
			}
		})
	}
	enc := stepup.EncodeSecret(secret)
	for _, c := range []struct{ name, code string }{{"valid", valid}, {"invalid", invalid}} {
		b.Run("pquerna/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok, _ := totp.ValidateCustom(c.code, enc, at, totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
				if ok {
					benchSink++
				}
			}
		})
	}
}
