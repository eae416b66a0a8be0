package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func readChain(t testing.TB, name string) []*x509.Certificate {
	t.Helper()
	c, err := ParseCertificatesPEM(readTestdata(t, name))
	require.NoError(t, err)
	return c
}

func emptyRevocations(t testing.TB) *RevocationList {
	t.Helper()
	l, err := ParseRevocationList([]byte(`{"entries":{}}`))
	require.NoError(t, err)
	return l
}

// expectedKD is the source's expected parse (the .json beside each chain).
type expectedKD struct {
	AttestationVersion       string `json:"attestationVersion"`
	AttestationSecurityLevel string `json:"attestationSecurityLevel"`
	KeyMintVersion           string `json:"keyMintVersion"`
	KeyMintSecurityLevel     string `json:"keyMintSecurityLevel"`
	AttestationChallenge     string `json:"attestationChallenge"`
	SoftwareEnforced         struct {
		CreationDateTime         string `json:"creationDateTime"`
		AttestationApplicationID struct {
			Packages []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"packages"`
			Signatures []string `json:"signatures"`
		} `json:"attestationApplicationId"`
	} `json:"softwareEnforced"`
	HardwareEnforced struct {
		Purposes    []string `json:"purposes"`
		Origin      string   `json:"origin"`
		OSVersion   string   `json:"osVersion"`
		RootOfTrust *struct {
			DeviceLocked      bool   `json:"deviceLocked"`
			VerifiedBootState string `json:"verifiedBootState"`
			VerifiedBootKey   string `json:"verifiedBootKey"`
		} `json:"rootOfTrust"`
	} `json:"hardwareEnforced"`
}

func levelName(l SecurityLevel) string {
	return map[SecurityLevel]string{SecuritySoftware: "SOFTWARE", SecurityTEE: "TRUSTED_ENVIRONMENT", SecurityStrongBox: "STRONG_BOX"}[l]
}

func i64(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// TestAndroidKeyDescriptionMatchesSource compares the parser with the
// expected parse that android/keyattestation ships beside each chain.
func TestAndroidKeyDescriptionMatchesSource(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"akita_sdk34_TEE_EC_NONE", "blueline_sdk28_SB_RSA_NONE", "caiman_sdk36_TEE_EC_RKP", "marlin_sdk29_TEE_EC_NONE"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var want expectedKD
			require.NoError(t, json.Unmarshal(readTestdata(t, "androidkey/"+name+".json"), &want))
			chain := readChain(t, "androidkey/"+name+".pem")
			kd, err := ParseKeyDescription(keyDescriptionExt(t, chain[0]))
			require.NoError(t, err)
			require.Equal(t, i64(t, want.AttestationVersion), kd.AttestationVersion)
			require.Equal(t, want.AttestationSecurityLevel, levelName(kd.AttestationSecurityLevel))
			require.Equal(t, i64(t, want.KeyMintVersion), kd.KeyMintVersion)
			require.Equal(t, want.KeyMintSecurityLevel, levelName(kd.KeyMintSecurityLevel))
			require.Equal(t, mustB64(t, want.AttestationChallenge), kd.AttestationChallenge)
			require.Equal(t, i64(t, want.SoftwareEnforced.CreationDateTime), kd.SoftwareEnforced.CreationDateTime)
			id := kd.SoftwareEnforced.AttestationApplicationID
			require.NotNil(t, id)
			require.Len(t, id.Packages, len(want.SoftwareEnforced.AttestationApplicationID.Packages))
			for i, p := range want.SoftwareEnforced.AttestationApplicationID.Packages {
				require.Equal(t, p.Name, id.Packages[i].Name)
				require.Equal(t, i64(t, p.Version), id.Packages[i].Version)
			}
			for i, s := range want.SoftwareEnforced.AttestationApplicationID.Signatures {
				require.Equal(t, mustB64(t, s), id.SignatureDigests[i])
			}
			hw := kd.HardwareEnforced
			require.Len(t, hw.Purposes, len(want.HardwareEnforced.Purposes))
			require.Equal(t, int64(0), hw.Origin, "GENERATED")
			if want.HardwareEnforced.OSVersion == "" {
				require.Equal(t, int64(-1), hw.OSVersion)
			} else {
				require.Equal(t, i64(t, want.HardwareEnforced.OSVersion), hw.OSVersion)
			}
			if want.HardwareEnforced.RootOfTrust == nil {
				require.Nil(t, hw.RootOfTrust)
				return
			}
			require.Equal(t, want.HardwareEnforced.RootOfTrust.DeviceLocked, hw.RootOfTrust.DeviceLocked)
			require.Equal(t, want.HardwareEnforced.RootOfTrust.VerifiedBootState, hw.RootOfTrust.VerifiedBootState.String())
			require.Equal(t, mustB64(t, want.HardwareEnforced.RootOfTrust.VerifiedBootKey), hw.RootOfTrust.VerifiedBootKey)
		})
	}
}

func keyDescriptionExt(t testing.TB, c *x509.Certificate) []byte {
	t.Helper()
	for _, e := range c.Extensions {
		if e.Id.Equal(oidKeyDescription) {
			return e.Value
		}
	}
	t.Fatal("no key description")
	return nil
}

// TestAndroidKeyManifest runs every androidkey manifest case through
// VerifyAndroidKeyChain at the manifest's time, then the expected facts.
func TestAndroidKeyManifest(t *testing.T) {
	t.Parallel()
	google := GoogleAttestationRoots()
	marlin := readChain(t, "androidkey/marlin_sdk29_TEE_EC_NONE.pem")
	softwareRoot := marlin[len(marlin)-1]
	cases := []struct {
		file      string
		at        string
		roots     []*x509.Certificate
		err       error
		version   int64
		level     SecurityLevel
		challenge string
		boot      VerifiedBootState
		locked    bool
		pkg       string
	}{
		{file: "akita_sdk34_TEE_EC_NONE.pem", at: "2024-09-26T22:31:25.586Z", version: 300, level: SecurityTEE, challenge: "challenge", boot: BootUnverified, pkg: "com.google.wireless.android.security.attestationverifier.collector"},
		{file: "blueline_sdk28_SB_RSA_NONE.pem", at: "2020-08-29T08:21:14.215Z", version: 3, level: SecurityStrongBox, challenge: "challenge", boot: BootUnverified, pkg: "com.google.wireless.android.security.attestationverifier.collector"},
		{file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", version: 400, level: SecurityTEE, challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", boot: BootVerified, locked: true, pkg: "com.google.android.attestation"},
		{file: "google-android-key-attestation_EC_TEE_chain.pem", at: "2018-07-29T12:44:17Z", version: 3, level: SecurityTEE, challenge: "abc", boot: BootUnverified, pkg: "android"},
		{file: "marlin_sdk29_TEE_EC_NONE.pem", at: "2019-10-29T00:21:52Z", err: ErrUnknownRoot},
		{file: "marlin_sdk29_TEE_EC_NONE.pem", at: "2019-10-29T00:21:52Z", roots: []*x509.Certificate{softwareRoot}, version: 2, level: SecuritySoftware, challenge: "challenge", pkg: "com.google.wireless.android.security.attestationverifier.collector"},
		{file: "invalid_tags_not_in_ascending_order.pem", at: "2027-09-16T00:00:00Z", err: ErrChain},
		// Negatives at other times and roots.
		{file: "akita_sdk34_TEE_EC_NONE.pem", at: "2024-10-09T00:00:00Z", err: ErrCertificateExpired},
		{file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", roots: google[1:], err: ErrUnknownRoot},
		{file: "google-android-key-attestation_EC_TEE_chain.pem", at: "2026-06-01T00:00:00Z", err: ErrCertificateExpired},
	}
	for _, c := range cases {
		t.Run(c.file+" at "+c.at, func(t *testing.T) {
			t.Parallel()
			roots := c.roots
			if roots == nil {
				roots = google
			}
			kd, err := VerifyAndroidKeyChain(readChain(t, "androidkey/"+c.file), roots, emptyRevocations(t), mustTime(t, c.at))
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				require.Nil(t, kd)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.version, kd.AttestationVersion)
			require.Equal(t, c.level, kd.AttestationSecurityLevel)
			require.Equal(t, []byte(c.challenge), kd.AttestationChallenge)
			require.Equal(t, c.pkg, kd.Packages()[0].Name)
			if c.level == SecuritySoftware {
				require.Nil(t, kd.RootOfTrust())
				return
			}
			require.Equal(t, c.boot, kd.RootOfTrust().VerifiedBootState)
			require.Equal(t, c.locked, kd.RootOfTrust().DeviceLocked)
		})
	}
}

// TestAndroidKeyOldTEEChainManifest checks the manifest's helper-parsed
// facts of the google/android-key-attestation chain, anchored at the 2016
// issue of Google's RSA root (the manifest's root for it) and at the
// embedded roots (same key).
func TestAndroidKeyOldTEEChainManifest(t *testing.T) {
	t.Parallel()
	chain := readChain(t, "androidkey/google-android-key-attestation_EC_TEE_chain.pem")
	require.Len(t, chain, 4)
	root2016 := readChain(t, "androidkey/google-root-rsa-2016.pem")
	at := mustTime(t, "2018-07-29T12:44:17Z")
	for name, roots := range map[string][]*x509.Certificate{"2016 root": root2016, "embedded roots": GoogleAttestationRoots()} {
		kd, err := VerifyAndroidKeyChain(chain, roots, emptyRevocations(t), at)
		require.NoError(t, err, name)
		require.Equal(t, int64(3), kd.AttestationVersion)
		require.Equal(t, int64(4), kd.KeyMintVersion, "keymasterVersion 4")
		require.Equal(t, SecurityTEE, kd.AttestationSecurityLevel)
		require.Equal(t, []byte("abc"), kd.AttestationChallenge)
		require.Equal(t, int64(1532868257791), kd.SoftwareEnforced.CreationDateTime)
		rot := kd.RootOfTrust()
		require.NotNil(t, rot)
		require.Equal(t, BootUnverified, rot.VerifiedBootState)
		require.False(t, rot.DeviceLocked)
		require.Equal(t, make([]byte, 32), rot.VerifiedBootKey)
		require.Equal(t, "android", kd.Packages()[0].Name)
		pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
		require.True(t, ok, "P-256 EC key")
		require.Equal(t, elliptic.P256(), pub.Curve)
	}
	// The 2016 root itself expired on 2026-05-24.
	_, err := VerifyAndroidKeyChain(chain, root2016, emptyRevocations(t), mustTime(t, "2026-05-25T00:00:00Z"))
	require.ErrorIs(t, err, ErrCertificateExpired)
	// A locked, verified-boot policy refuses it.
	kd, err := VerifyAndroidKeyChain(chain, root2016, emptyRevocations(t), at)
	require.NoError(t, err)
	require.ErrorIs(t, CheckKeyDescription(kd, KeyDescriptionPolicy{Challenge: []byte("abc")}), ErrRootOfTrust)
	require.NoError(t, CheckKeyDescription(kd, KeyDescriptionPolicy{Challenge: []byte("abc"), InsecureAllowUnverifiedBoot: true}))
}

func TestAndroidKeyRootsInclude2025ECRoot(t *testing.T) {
	t.Parallel()
	roots := GoogleAttestationRoots()
	require.Len(t, roots, 2)
	require.Equal(t, "Key Attestation CA1", roots[1].Subject.CommonName)
	require.Equal(t, x509.ECDSA, roots[1].PublicKeyAlgorithm)
	// The 2016 root of the old chains has the same key as the 2022 root.
	old := readChain(t, "androidkey/google-root-rsa-2016.pem")[0]
	require.Equal(t, old.RawSubjectPublicKeyInfo, roots[0].RawSubjectPublicKeyInfo)
	// Split copies equal the embedded ones.
	require.Equal(t, readChain(t, "androidkey/google-root-ec-p384-2025.pem")[0].Raw, roots[1].Raw)
	require.Equal(t, readChain(t, "androidkey/google-root-rsa-2022.pem")[0].Raw, roots[0].Raw)
}

func TestAndroidKeyTagOrderRefused(t *testing.T) {
	t.Parallel()
	chain := readChain(t, "androidkey/invalid_tags_not_in_ascending_order.pem")
	_, err := ParseKeyDescription(keyDescriptionExt(t, chain[0]))
	require.ErrorIs(t, err, ErrMalformed)
	require.Contains(t, err.Error(), "ascending order")
}

func TestAndroidKeyChainNegatives(t *testing.T) {
	t.Parallel()
	google := GoogleAttestationRoots()
	akita := readChain(t, "androidkey/akita_sdk34_TEE_EC_NONE.pem")
	caiman := readChain(t, "androidkey/caiman_sdk36_TEE_EC_RKP.pem")
	at := mustTime(t, "2024-09-26T22:31:25.586Z")

	// Leaf issuer does not match the next certificate.
	mixed := append([]*x509.Certificate{akita[0]}, caiman[1:]...)
	_, err := VerifyAndroidKeyChain(mixed, google, emptyRevocations(t), mustTime(t, "2025-09-26T15:31:20.964Z"))
	require.ErrorIs(t, err, ErrChain)
	require.Contains(t, err.Error(), "issuer")

	// A leaf alone.
	_, err = VerifyAndroidKeyChain(akita[:1], google, emptyRevocations(t), at)
	require.ErrorIs(t, err, ErrChain)

	// Chain without its root: the last intermediate is signed by a root.
	kd, err := VerifyAndroidKeyChain(akita[:4], google, emptyRevocations(t), at)
	require.NoError(t, err)
	require.Equal(t, int64(300), kd.AttestationVersion)

	// Revoked intermediate (Google's list format).
	revs, err := ParseRevocationList(fmt.Appendf(nil, `{"entries":{%q:{"status":"REVOKED","reason":"KEY_COMPROMISE"}}}`, akita[2].SerialNumber.Text(16)))
	require.NoError(t, err)
	_, err = VerifyAndroidKeyChain(akita, google, revs, at)
	require.ErrorIs(t, err, ErrRevoked)

	// Suspended leaf given with upper-case hex and leading zeros.
	revs, err = ParseRevocationList(fmt.Appendf(nil, `{"entries":{"00%X":{"status":"SUSPENDED"}}}`, akita[0].SerialNumber))
	require.NoError(t, err)
	_, err = VerifyAndroidKeyChain(akita, google, revs, at)
	require.ErrorIs(t, err, ErrRevoked)

	_, err = VerifyAndroidKeyChain(akita, google, nil, at)
	require.Error(t, err)
	require.False(t, IsRefusal(err))
}

func androidEvidence(t testing.TB, chain []*x509.Certificate, challenge []byte, appID string) *Evidence {
	t.Helper()
	var w androidKeyWire
	w.Format = FormatAndroidKey
	for _, c := range chain {
		w.Chain = append(w.Chain, base64.StdEncoding.EncodeToString(c.Raw))
	}
	b, err := json.Marshal(w)
	require.NoError(t, err)
	return &Evidence{Attestation: b, Challenge: challenge, AppID: appID, KeyThumbprint: "jkt"}
}

// TestAndroidKeyVerifierPolicy runs the verifier's policy over the real
// chains.
func TestAndroidKeyVerifierPolicy(t *testing.T) {
	t.Parallel()
	const collector = "com.google.wireless.android.security.attestationverifier.collector"
	digest := mustB64(t, "EDk47kU35Z6O55L2VFBPuDRvxrNG0LvEQV/DOfz8jsE=")
	pkgs := []AndroidPackage{{Name: collector, SignatureDigests: [][]byte{digest}}, {Name: "com.google.android.attestation", SignatureDigests: [][]byte{digest}}}
	cases := []struct {
		name      string
		file, at  string
		challenge string
		appID     string
		cfg       func(*AndroidKeyConfig)
		err       error
		level     SecurityLevel
	}{
		{name: "good production device", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", level: SecurityTEE},
		{name: "declared package matches", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", appID: "com.google.android.attestation", level: SecurityTEE},
		{name: "declared package differs", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", appID: collector, err: ErrPackage},
		{name: "wrong challenge", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "challenge", err: ErrChallengeMismatch},
		{name: "strongbox required", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", cfg: func(c *AndroidKeyConfig) { c.MinSecurityLevel = SecurityStrongBox }, err: ErrSecurityLevel},
		{name: "unknown package", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", cfg: func(c *AndroidKeyConfig) { c.Packages = pkgs[:1] }, err: ErrPackage},
		{name: "unknown signer", file: "caiman_sdk36_TEE_EC_RKP.pem", at: "2025-09-26T15:31:20.964Z", challenge: "d688d763-6118-4ca6-94b2-e6cd9ed7e4e4", cfg: func(c *AndroidKeyConfig) {
			c.Packages = []AndroidPackage{{Name: "com.google.android.attestation", SignatureDigests: [][]byte{make([]byte, 32)}}}
		}, err: ErrPackage},
		{name: "unlocked test device refused", file: "akita_sdk34_TEE_EC_NONE.pem", at: "2024-09-26T22:31:25.586Z", challenge: "challenge", err: ErrRootOfTrust},
		{name: "unlocked test device insecurely allowed", file: "akita_sdk34_TEE_EC_NONE.pem", at: "2024-09-26T22:31:25.586Z", challenge: "challenge", cfg: func(c *AndroidKeyConfig) { c.InsecureAllowUnverifiedBoot = true }, level: SecurityTEE},
		{name: "strongbox device", file: "blueline_sdk28_SB_RSA_NONE.pem", at: "2020-08-29T08:21:14.215Z", challenge: "challenge", cfg: func(c *AndroidKeyConfig) {
			c.InsecureAllowUnverifiedBoot = true
			c.MinSecurityLevel = SecurityStrongBox
		}, level: SecurityStrongBox},
		{name: "software attestation", file: "marlin_sdk29_TEE_EC_NONE.pem", at: "2019-10-29T00:21:52Z", challenge: "challenge", err: ErrUnknownRoot},
		{name: "software attestation with its root but TEE minimum", file: "marlin_sdk29_TEE_EC_NONE.pem", at: "2019-10-29T00:21:52Z", challenge: "challenge", cfg: func(c *AndroidKeyConfig) {
			m := readChain(t, "androidkey/marlin_sdk29_TEE_EC_NONE.pem")
			c.Roots = append(c.Roots, m[len(m)-1])
			c.InsecureAllowUnverifiedBoot = true
		}, err: ErrSecurityLevel},
		{name: "old EC TEE chain refused by boot policy", file: "google-android-key-attestation_EC_TEE_chain.pem", at: "2018-07-29T12:44:17Z", challenge: "abc", err: ErrRootOfTrust},
		{name: "tampered leaf", file: "invalid_tags_not_in_ascending_order.pem", at: "2027-09-16T00:00:00Z", challenge: "challenge", err: ErrChain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := AndroidKeyConfig{Roots: GoogleAttestationRoots(), Packages: pkgs, Revocations: emptyRevocations(t), Now: fixedNow(mustTime(t, c.at))}
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			v, err := NewAndroidKey(cfg)
			require.NoError(t, err)
			res, err := v.Verify(context.Background(), androidEvidence(t, readChain(t, "androidkey/"+c.file), []byte(c.challenge), c.appID))
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				require.True(t, IsRefusal(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.level, res.SecurityLevel)
			require.Equal(t, FormatAndroidKey, res.Format)
			require.NotNil(t, res.PublicKey)
			require.Equal(t, "false", res.Claims["attested_key_is_client_key"])
			require.NotEmpty(t, res.Claims["verified_boot_state"])
		})
	}
}

func TestNewAndroidKeyRequiresSettings(t *testing.T) {
	t.Parallel()
	good := AndroidKeyConfig{Roots: GoogleAttestationRoots(), Packages: []AndroidPackage{{Name: "a", SignatureDigests: [][]byte{make([]byte, 32)}}}, Revocations: emptyRevocations(t)}
	_, err := NewAndroidKey(good)
	require.NoError(t, err)
	for name, mutate := range map[string]func(*AndroidKeyConfig){
		"no roots":       func(c *AndroidKeyConfig) { c.Roots = nil },
		"no packages":    func(c *AndroidKeyConfig) { c.Packages = nil },
		"no digests":     func(c *AndroidKeyConfig) { c.Packages = []AndroidPackage{{Name: "a"}} },
		"short digest":   func(c *AndroidKeyConfig) { c.Packages = []AndroidPackage{{Name: "a", SignatureDigests: [][]byte{{1}}}} },
		"no revocations": func(c *AndroidKeyConfig) { c.Revocations = nil },
		"bad level":      func(c *AndroidKeyConfig) { c.MinSecurityLevel = 9 },
	} {
		c := good
		mutate(&c)
		_, err := NewAndroidKey(c)
		require.Error(t, err, name)
	}
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{``, `{}`, `[]`, `{"entries":{"xyz":{"status":"REVOKED"}}}`, `{"entries":[]}`} {
		_, err := ParseRevocationList([]byte(bad))
		require.Error(t, err, bad)
	}
	l, err := ParseRevocationList([]byte(`{"entries":{"2c8cdddfd5e03bfc":{"status":"REVOKED","expires":"2020-11-13","reason":"KEY_COMPROMISE","comment":"Key stored on unsecure system"}}}`))
	require.NoError(t, err)
	require.Equal(t, 1, l.Len())
	n, _ := new(big.Int).SetString("2c8cdddfd5e03bfc", 16)
	e, ok := l.Lookup(n)
	require.True(t, ok)
	require.Equal(t, "KEY_COMPROMISE", e.Reason)
	// A failed update leaves the list as it was.
	require.Error(t, l.Update([]byte(`{`)))
	require.Equal(t, 1, l.Len())
}

func TestRefreshRevocationFile(t *testing.T) {
	t.Parallel()
	body := `{"entries":{"01":{"status":"SUSPENDED"}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			_, _ = w.Write([]byte(`not json`))
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "status.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"entries":{}}`), 0o600))
	ctx := context.Background()

	_, err := RefreshRevocationFile(ctx, srv.Client(), srv.URL+"/broken", path)
	require.Error(t, err)
	_, err = RefreshRevocationFile(ctx, srv.Client(), srv.URL+"/missing", path)
	require.Error(t, err)
	old, err := LoadRevocationList(path)
	require.NoError(t, err)
	require.Equal(t, 0, old.Len(), "a failed refresh replaced the file")

	l, err := RefreshRevocationFile(ctx, srv.Client(), srv.URL+"/status", path)
	require.NoError(t, err)
	require.Equal(t, 1, l.Len())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, body, string(b))
	_, err = RefreshRevocationFile(ctx, nil, srv.URL, path)
	require.Error(t, err)
}
