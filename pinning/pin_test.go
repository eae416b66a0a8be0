package pinning

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The manifest's pins, computed with openssl (testdata/SOURCES.md).
const (
	appleLeafPin   = "sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE="
	appleCAPin     = "sha256/YIGkqT2GtRADhRxA6OtxL+ujui99faxmyzx0cbJGZRo="
	appleRootPin   = "sha256/GudR/SmJbQ8fE/4ibAY/RF1A2JOKzGJFwlHswGeTML0="
	userTrustPin   = "sha256/x4QzPSC810K5/cMjb05Qm4k3Bw5zBn4lTdO/nEW/Td4="
	appleChainFile = "apple-doc-sample-appattest-chain.pem"
)

func TestPinOfManifestChains(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want []string
	}{
		{appleChainFile, []string{appleLeafPin, appleCAPin, appleRootPin}},
		{"signal-apns-certificates.pem", []string{userTrustPin}},
		{"Apple_App_Attestation_Root_CA.pem", []string{appleRootPin}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, c := range readPEMChain(t, tc.file) {
				got = append(got, PinOf(c).String())
				p, err := PinOfPublicKey(c.PublicKey)
				require.NoError(t, err)
				require.Equal(t, PinOf(c), p, "the pin of the key equals the pin of the certificate")
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParsePin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{appleLeafPin, true},
		{userTrustPin, true},
		{"AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=", false},          // no algorithm
		{"sha1/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=", false},     // other algorithm
		{"SHA256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=", false},   // case matters
		{"sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE", false},    // padding missing
		{"sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEF=", false},   // non-canonical last bits
		{"sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuE==", false},   // 31 bytes
		{"sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSfuEE=\n", false}, // trailing newline
		{"sha256/AuTuuqERh48QjjSukWL5ZFusNtPt6rWqdu82wBSf_EE=", false},   // URL alphabet
		{"sha256/" + strings.Repeat("0", 44), false},                     // 33 bytes, no padding (found by fuzzing)
		{"sha256/", false},
		{"", false},
	} {
		p, err := ParsePin(tc.in)
		if !tc.ok {
			require.ErrorIs(t, err, ErrInvalidPin, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.in, p.String())
	}
}

func TestPinJSON(t *testing.T) {
	t.Parallel()
	pins := []Pin{mustPin(t, appleLeafPin), mustPin(t, userTrustPin)}
	b, err := json.Marshal(pins)
	require.NoError(t, err)
	require.JSONEq(t, `["`+appleLeafPin+`","`+userTrustPin+`"]`, string(b))
	var back []Pin
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, pins, back)
	require.ErrorIs(t, json.Unmarshal([]byte(`["sha1/x"]`), &back), ErrInvalidPin)
}

func TestGenerateBackup(t *testing.T) {
	t.Parallel()
	key, pin, err := GenerateBackup()
	require.NoError(t, err)
	want, err := PinOfPublicKey(key.Public())
	require.NoError(t, err)
	require.Equal(t, want, pin)
	_, other, err := GenerateBackup()
	require.NoError(t, err)
	require.NotEqual(t, pin, other)

	_, err = PinOfPublicKey("not a key")
	require.ErrorIs(t, err, ErrUnsupportedKey)
}
