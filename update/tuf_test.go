package update

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tufDoc is a TUF metadata file: signed content plus signatures.
type tufDoc struct {
	Signatures []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
	Signed json.RawMessage `json:"signed"`
}

// canonicalJSON writes v as OLPC canonical JSON: sorted keys, no
// whitespace, only " and \ escaped in strings.
func canonicalJSON(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			canonicalJSON(buf, k)
			buf.WriteByte(':')
			canonicalJSON(buf, x[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			canonicalJSON(buf, e)
		}
		buf.WriteByte(']')
	case string:
		buf.WriteByte('"')
		for _, r := range x {
			if r == '"' || r == '\\' {
				buf.WriteByte('\\')
			}
			buf.WriteRune(r)
		}
		buf.WriteByte('"')
	case json.Number:
		buf.WriteString(x.String())
	case bool:
		fmt.Fprint(buf, x)
	case nil:
		buf.WriteString("null")
	}
}

func loadTUF(t *testing.T, name string) (tufDoc, map[string]any) {
	t.Helper()
	b, err := os.ReadFile("testdata/tuf/" + name)
	require.NoError(t, err)
	var d tufDoc
	require.NoError(t, json.Unmarshal(b, &d))
	dec := json.NewDecoder(bytes.NewReader(d.Signed))
	dec.UseNumber()
	var signed map[string]any
	require.NoError(t, dec.Decode(&signed))
	return d, signed
}

// tufCandidates turns a TUF document's signatures into candidates for
// countVerified (RSA-PSS SHA-256 over canonical JSON).
func tufCandidates(d tufDoc, signed map[string]any) []candidate {
	var msg bytes.Buffer
	canonicalJSON(&msg, signed)
	digest := sha256.Sum256(msg.Bytes())
	var out []candidate
	for _, s := range d.Signatures {
		sig, _ := hex.DecodeString(s.Sig)
		out = append(out, candidate{kid: s.KeyID, verify: func(pub crypto.PublicKey) bool {
			k, ok := pub.(*rsa.PublicKey)
			return ok && rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}})
	}
	return out
}

// tufRole returns a role's trusted keys and threshold from root.json.
func tufRole(t *testing.T, root map[string]any, role string) (map[string]crypto.PublicKey, int) {
	t.Helper()
	keys := root["keys"].(map[string]any)
	r := root["roles"].(map[string]any)[role].(map[string]any)
	out := map[string]crypto.PublicKey{}
	for _, id := range r["keyids"].([]any) {
		pemText := keys[id.(string)].(map[string]any)["keyval"].(map[string]any)["public"].(string)
		blk, _ := pem.Decode([]byte(pemText))
		require.NotNil(t, blk)
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		require.NoError(t, err)
		out[id.(string)] = pub
	}
	th, err := r["threshold"].(json.Number).Int64()
	require.NoError(t, err)
	return out, int(th)
}

// TestTUFThresholdAndExpiry checks the package's threshold counting and
// expiry rule against real TUF metadata: each file verifies under the
// right role of root.json, not under another role's keys, a repeated
// signature counts once, and expiry starts at the expiry instant.
func TestTUFThresholdAndExpiry(t *testing.T) {
	t.Parallel()
	_, root := loadTUF(t, "root.json")
	for _, tc := range []struct{ file, role, wrongRole string }{
		{"root.json", "root", "targets"},
		{"timestamp.json", "timestamp", "snapshot"},
		{"snapshot.json", "snapshot", "timestamp"},
		{"targets.json", "targets", "root"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			d, signed := loadTUF(t, tc.file)
			keys, threshold := tufRole(t, root, tc.role)
			require.Equal(t, 1, threshold)
			cands := tufCandidates(d, signed)
			require.Equal(t, 1, countVerified(cands, keys), "valid under its role")

			wrong, _ := tufRole(t, root, tc.wrongRole)
			require.Equal(t, 0, countVerified(cands, wrong), "another role's keys do not count")

			require.Equal(t, 1, countVerified(append(cands, cands...), keys), "one key signing twice counts once")

			signed["version"] = json.Number("2") // tampered content
			require.Equal(t, 0, countVerified(tufCandidates(d, signed), keys))

			exp, err := time.Parse(time.RFC3339Nano, signed["expires"].(string))
			require.NoError(t, err)
			require.False(t, expired(exp, exp.Add(-time.Microsecond)))
			require.True(t, expired(exp, exp))
			require.True(t, expired(exp, exp.Add(time.Microsecond)))
			require.True(t, expired(exp, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)))
		})
	}
}
