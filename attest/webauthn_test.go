package attest

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

type webAuthnCase struct {
	Credential     json.RawMessage `json:"credential"`
	Challenge      string          `json:"expected_challenge_b64url"`
	Origin         string          `json:"expected_origin"`
	RPID           string          `json:"expected_rp_id"`
	ExpectedResult struct {
		Fmt          string `json:"fmt"`
		CredentialID string `json:"credential_id_b64url"`
		SignCount    uint32 `json:"sign_count"`
		AAGUID       string `json:"aaguid_hex"`
	} `json:"expected"`
}

func loadWebAuthnCase(t testing.TB, name string) webAuthnCase {
	t.Helper()
	var c webAuthnCase
	require.NoError(t, json.Unmarshal(readTestdata(t, "webauthn/"+name), &c))
	return c
}

// TestWebAuthnManifest runs every case of the webauthn manifest at its
// time, with the shipped roots, then the manifest's negatives.
func TestWebAuthnManifest(t *testing.T) {
	t.Parallel()
	roots := append(readChain(t, "webauthn/apple-webauthn-root-ca.pem"), readChain(t, "webauthn/google-hardware-attestation-root-2019.pem")...)
	type tc struct {
		file    string
		at      string
		sha1    bool
		trusted bool
		mutate  func(*webAuthnCase)
		err     error
	}
	cases := []tc{
		{file: "packed-yubikey-firefox.json", at: "2022-01-01T00:00:00Z"},
		{file: "apple-passkey.json", at: "2021-09-01T00:00:00Z", trusted: true},
		{file: "android-key-pixel8a.json", at: "2025-01-08T00:00:00Z", trusted: true},
		{file: "tpm-surface-pro-4.json", at: "2022-01-01T00:00:00Z", sha1: true},
		{file: "fido-u2f-yubikey-firefox.json", at: "2022-01-01T00:00:00Z"},
		// SHA-1 is refused unless allowed by name.
		{file: "tpm-surface-pro-4.json", at: "2022-01-01T00:00:00Z", err: ErrAlgorithm},
		// The manifest's negatives.
		{file: "apple-passkey.json", at: "2021-09-04T00:00:00Z", err: ErrCertificateExpired},
		{file: "android-key-pixel8a.json", at: "2025-02-03T00:00:00Z", err: ErrCertificateExpired},
		{file: "tpm-surface-pro-4.json", at: "2025-06-01T00:00:00Z", sha1: true, err: ErrCertificateExpired},
	}
	negatives := map[string]struct {
		mutate func(*webAuthnCase)
		err    error
	}{
		"challenge": {func(c *webAuthnCase) { c.Challenge = "AAAA" }, ErrChallengeMismatch},
		"origin":    {func(c *webAuthnCase) { c.Origin = "https://evil.example" }, ErrWebAuthn},
		"rp id":     {func(c *webAuthnCase) { c.RPID = "evil.example" }, ErrAppIDMismatch},
	}
	for _, f := range []string{"packed-yubikey-firefox.json", "apple-passkey.json", "android-key-pixel8a.json", "tpm-surface-pro-4.json", "fido-u2f-yubikey-firefox.json"} {
		at := map[string]string{"apple-passkey.json": "2021-09-01T00:00:00Z", "android-key-pixel8a.json": "2025-01-08T00:00:00Z"}[f]
		if at == "" {
			at = "2022-01-01T00:00:00Z"
		}
		for _, n := range negatives {
			cases = append(cases, tc{file: f, at: at, sha1: true, mutate: n.mutate, err: n.err})
		}
	}
	for _, c := range cases {
		name := c.file + " at " + c.at
		if c.err != nil {
			name += " refused " + c.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wc := loadWebAuthnCase(t, c.file)
			if c.mutate != nil {
				c.mutate(&wc)
			}
			opts := WebAuthnOptions{
				Challenge: mustB64(t, wc.Challenge), Origin: wc.Origin, RPID: wc.RPID,
				Roots: roots, At: mustTime(t, c.at), InsecureAllowSHA1: c.sha1,
			}
			res, err := VerifyWebAuthnRegistration(wc.Credential, opts)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, wc.ExpectedResult.Fmt, res.Format)
			require.Equal(t, mustB64(t, wc.ExpectedResult.CredentialID), res.CredentialID)
			require.Equal(t, wc.ExpectedResult.SignCount, res.SignCount)
			require.Equal(t, wc.ExpectedResult.AAGUID, hex.EncodeToString(res.AAGUID))
			require.Equal(t, c.trusted, res.Trusted)
			// Without roots nothing is trusted, but it still verifies.
			opts.Roots = nil
			res, err = VerifyWebAuthnRegistration(wc.Credential, opts)
			require.NoError(t, err)
			require.False(t, res.Trusted)
		})
	}
}

func TestWebAuthnWrongRootNotTrusted(t *testing.T) {
	t.Parallel()
	wc := loadWebAuthnCase(t, "apple-passkey.json")
	res, err := VerifyWebAuthnRegistration(wc.Credential, WebAuthnOptions{
		Challenge: mustB64(t, wc.Challenge), Origin: wc.Origin, RPID: wc.RPID,
		Roots: []*x509.Certificate{AppleAppAttestationRoot()}, At: mustTime(t, "2021-09-01T00:00:00Z"),
	})
	require.NoError(t, err)
	require.False(t, res.Trusted)
	_, err = VerifyWebAuthnRegistration(wc.Credential, WebAuthnOptions{Origin: wc.Origin, RPID: wc.RPID})
	require.Error(t, err)
	require.False(t, IsRefusal(err))
}
