package securestore_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// The golden stores in testdata were written by this package at format
// version 1 (see testdata/SOURCES.md). Every later version must open them:
// the formats in the package doc are a promise.
const (
	goldenPasscode = "golden passcode"
	goldenAD       = "golden associated data"
	writeGoldenEnv = "MOAT_SECURESTORE_WRITE_GOLDEN"
)

var goldenSealerKey = securestore.SealerKey{ID: 1, Secret: bytes.Repeat([]byte{0x42}, 32)}

func goldenDirs() map[securestore.AEAD]string {
	return map[securestore.AEAD]string{
		securestore.AES256GCM:         filepath.Join("testdata", "golden-v1-aes-256-gcm"),
		securestore.XChaCha20Poly1305: filepath.Join("testdata", "golden-v1-xchacha20-poly1305"),
	}
}

// TestWriteGolden rewrites the golden files when MOAT_SECURESTORE_WRITE_GOLDEN
// is set. Never needed unless the format version changes.
func TestWriteGolden(t *testing.T) {
	if os.Getenv(writeGoldenEnv) == "" {
		t.Skip("set " + writeGoldenEnv + "=1 to rewrite the golden files")
	}
	ctx := context.Background()
	for a, dir := range goldenDirs() {
		require.NoError(t, os.RemoveAll(dir))
		b, err := securestore.NewDirBackend(dir)
		require.NoError(t, err)
		s, err := securestore.Create(ctx, b, securestore.Passcode([]byte(goldenPasscode)), securestore.Config{AEAD: a, Argon2: fastKDF})
		require.NoError(t, err)
		require.NoError(t, s.Put(ctx, "greeting", []byte("hello, moat")))
		c, err := s.Collection(ctx, "cities", "country")
		require.NoError(t, err)
		require.NoError(t, c.Put(ctx, "paris", json.RawMessage(`{"name":"Paris","country":"FR"}`)))
		_, err = s.RotateKey(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Put(ctx, "after-rotation", []byte("under key 2")))
	}
	for _, a := range []securestore.AEAD{securestore.AES256GCM, securestore.XChaCha20Poly1305} {
		sealer, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{goldenSealerKey}, AEAD: a})
		require.NoError(t, err)
		sealed, err := sealer.Seal(ctx, []byte("sealed secret"), []byte(goldenAD))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "golden-v1-sealed-"+a.String()+".hex"), []byte(hex.EncodeToString(sealed)+"\n"), 0o644))
	}
}

func TestGoldenFormatV1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for a, src := range goldenDirs() {
		// Work on a copy: opening must not need to write, but the test
		// must not risk the golden files either.
		dir := t.TempDir()
		entries, err := os.ReadDir(src)
		require.NoError(t, err)
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(src, e.Name()))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o600))
		}
		b, err := securestore.NewDirBackend(dir)
		require.NoError(t, err)
		s, err := securestore.Open(ctx, b, securestore.Passcode([]byte(goldenPasscode)))
		require.NoError(t, err, a.String())
		require.Equal(t, securestore.KeyInfo{AEAD: a, Current: 2, Keys: []uint32{1, 2}, Passcode: true, Argon2: fastKDF}, s.KeyInfo())
		for k, v := range map[string]string{"greeting": "hello, moat", "after-rotation": "under key 2"} {
			got, err := s.Get(ctx, k)
			require.NoError(t, err, k)
			require.Equal(t, v, string(got))
		}
		c, err := s.Collection(ctx, "cities", "country")
		require.NoError(t, err)
		docs, err := c.Find(ctx, securestore.Query{Match: []map[string]any{{"country": "fr"}}})
		require.NoError(t, err)
		require.Len(t, docs, 1)
		require.Equal(t, "paris", docs[0].ID)
		require.JSONEq(t, `{"name":"Paris","country":"FR"}`, string(docs[0].JSON))
	}
	sealer, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{goldenSealerKey}})
	require.NoError(t, err)
	for _, a := range []securestore.AEAD{securestore.AES256GCM, securestore.XChaCha20Poly1305} {
		text, err := os.ReadFile(filepath.Join("testdata", "golden-v1-sealed-"+a.String()+".hex"))
		require.NoError(t, err)
		sealed, err := hex.DecodeString(strings.TrimSpace(string(text)))
		require.NoError(t, err)
		require.Equal(t, byte(1), sealed[0], "format version")
		require.Equal(t, byte(a), sealed[1], "cipher")
		got, err := sealer.Open(ctx, sealed, []byte(goldenAD))
		require.NoError(t, err)
		require.Equal(t, "sealed secret", string(got))
	}
}
