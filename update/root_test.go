package update

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func signRoot(t *testing.T, v uint64, rootKeys []crypto.Signer, threshold int, signers ...crypto.Signer) []byte {
	t.Helper()
	b, err := SignRoot(Root{Version: v, Expires: t0.Add(time.Duration(v) * 24 * time.Hour), RootKeys: pubs(t, rootKeys...),
		RootThreshold: threshold, ManifestKeys: pubs(t, rootKeys[0]), ManifestThreshold: 1}, signers...)
	require.NoError(t, err)
	return b
}

func TestRootThreshold(t *testing.T) {
	t.Parallel()
	k := testKeys()
	three := []crypto.Signer{k[0], k[1], k[2]}
	tests := []struct {
		name    string
		signers []crypto.Signer
		wantErr error
	}{
		{"threshold met", []crypto.Signer{k[0], k[2]}, nil},
		{"all keys", three, nil},
		{"below threshold", []crypto.Signer{k[1]}, ErrSignature},
		{"unknown key does not count", []crypto.Signer{k[1], k[4]}, ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRoot(signRoot(t, 1, three, 2, tc.signers...))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, r)
				return
			}
			require.NoError(t, err)
			require.EqualValues(t, 1, r.Version())
			require.Len(t, r.Root().RootKeys, 3)
		})
	}

	t.Run("one key signing twice counts once", func(t *testing.T) {
		t.Parallel()
		doc := signRoot(t, 1, three, 2, k[0])
		var env envelope
		require.NoError(t, json.Unmarshal(doc, &env))
		env.Signatures = append(env.Signatures, env.Signatures[0])
		doc, _ = json.Marshal(env)
		_, err := ParseRoot(doc)
		require.ErrorIs(t, err, ErrSignature)
	})
}

func TestRootRotation(t *testing.T) {
	t.Parallel()
	k := testKeys()
	old := []crypto.Signer{k[0], k[1]}
	next := []crypto.Signer{k[2], k[3]}
	v1, err := ParseRoot(signRoot(t, 1, old, 2, old...))
	require.NoError(t, err)

	v2doc := signRoot(t, 2, next, 2, k[0], k[1], k[2], k[3])
	v2, err := v1.Update(v2doc)
	require.NoError(t, err)
	require.EqualValues(t, 2, v2.Version())
	v3, err := v2.Update(signRoot(t, 3, next, 1, k[2], k[3]))
	require.NoError(t, err, "rotation followed in order")
	require.EqualValues(t, 3, v3.Version())

	tests := []struct {
		name    string
		from    *TrustedRoot
		doc     []byte
		wantErr error
	}{
		{"only the new keys signed", v1, signRoot(t, 2, next, 2, next...), ErrSignature},
		{"only the old keys signed", v1, signRoot(t, 2, next, 2, old...), ErrSignature},
		{"below the new threshold", v1, signRoot(t, 2, next, 2, k[0], k[1], k[2]), ErrSignature},
		{"below the old threshold", v1, signRoot(t, 2, next, 2, k[0], k[2], k[3]), ErrSignature},
		{"version skipped", v1, signRoot(t, 3, old, 2, old...), ErrRollback},
		{"same version again", v2, v2doc, ErrRollback},
		{"older version", v2, signRoot(t, 1, next, 1, next...), ErrRollback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.from.Update(tc.doc)
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
}

func TestRootExpiry(t *testing.T) {
	t.Parallel()
	r, err := ParseRoot(simpleRoot(t, testKeys()[0]))
	require.NoError(t, err)
	exp := r.Expires()
	require.NoError(t, r.CheckExpiry(exp.Add(-time.Second)))
	require.ErrorIs(t, r.CheckExpiry(exp), ErrExpired)
}

// reencode decodes a JWS payload, lets edit change it, and re-encodes it
// without re-signing.
func reencode(t *testing.T, doc []byte, edit func(string) string) []byte {
	t.Helper()
	var env envelope
	require.NoError(t, json.Unmarshal(doc, &env))
	p, err := b64(env.Payload)
	require.NoError(t, err)
	env.Payload = base64.RawURLEncoding.EncodeToString([]byte(edit(string(p))))
	out, err := json.Marshal(env)
	require.NoError(t, err)
	return out
}

func TestRootMalformed(t *testing.T) {
	t.Parallel()
	k := testKeys()[0]
	good := simpleRoot(t, k)
	tests := []struct {
		name string
		doc  []byte
		want error
	}{
		{"not JSON", []byte("nope"), ErrMalformed},
		{"empty object", []byte("{}"), ErrMalformed},
		{"compact JWS", []byte("a.b.c"), ErrMalformed},
		{"unprotected header", []byte(strings.Replace(string(good), `"protected"`, `"header":{},"protected"`, 1)), ErrMalformed},
		{"duplicate member", []byte(strings.Replace(string(good), `{"payload"`, `{"payload":"x","payload"`, 1)), ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), "{}"...), ErrMalformed},
		{"tampered payload", reencode(t, good, func(s string) string { return strings.Replace(s, `"version":1`, `"version":7`, 1) }), ErrSignature},
		{"unknown payload member", reencode(t, good, func(s string) string { return strings.Replace(s, `{`, `{"extra":1,`, 1) }), ErrMalformed},
		{"threshold zero", reencode(t, good, func(s string) string { return strings.Replace(s, `"root_threshold":1`, `"root_threshold":0`, 1) }), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRoot(tc.doc)
			require.ErrorIs(t, err, tc.want)
		})
	}

	t.Run("manifest signature is not a root signature", func(t *testing.T) {
		t.Parallel()
		m := testManifest(1)
		signed, err := SignManifest(m, k)
		require.NoError(t, err)
		_, err = ParseRoot(signed)
		require.ErrorIs(t, err, ErrMalformed)
	})

	t.Run("kid must be the thumbprint", func(t *testing.T) {
		t.Parallel()
		p, err := PublicKeyOf(k)
		require.NoError(t, err)
		j, err := encodePublicJWK(p.Key)
		require.NoError(t, err)
		j.Kid = "other"
		_, err = j.decode()
		require.ErrorIs(t, err, ErrMalformed)
	})
}

func TestKeysRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{EdDSA, ES256} {
		k, err := GenerateKey(alg)
		require.NoError(t, err)
		b, err := MarshalPrivateKey(k)
		require.NoError(t, err)
		k2, err := ParsePrivateKey(b)
		require.NoError(t, err)
		id1, _ := KeyID(k.Public())
		id2, _ := KeyID(k2.Public())
		require.Equal(t, id1, id2)
	}
	_, err := GenerateKey("RS256")
	require.Error(t, err)
	_, err = ParsePrivateKey([]byte(`{"kty":"oct","k":"AAAA"}`))
	require.ErrorIs(t, err, ErrMalformed)
}
