package securestore_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// sealerInterface is what stepup and auth declare; *Sealer must satisfy it
// structurally.
type sealerInterface interface {
	Seal(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	Open(ctx context.Context, sealed, associatedData []byte) ([]byte, error)
}

var _ sealerInterface = (*securestore.Sealer)(nil)

func TestSealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1 := securestore.GenerateSealerKey(1)
	for _, a := range []securestore.AEAD{0, securestore.XChaCha20Poly1305} {
		s, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k1}, AEAD: a})
		require.NoError(t, err)
		seed := []byte("JBSWY3DPEHPK3PXP")
		ad := []byte("totp:user-42")
		sealed, err := s.Seal(ctx, seed, ad)
		require.NoError(t, err)
		require.False(t, bytes.Contains(sealed, seed))
		again, err := s.Seal(ctx, seed, ad)
		require.NoError(t, err)
		require.NotEqual(t, sealed, again, "fresh nonce per seal")
		got, err := s.Open(ctx, sealed, ad)
		require.NoError(t, err)
		require.Equal(t, seed, got)

		_, err = s.Open(ctx, sealed, []byte("totp:user-43"))
		require.ErrorIs(t, err, securestore.ErrCorruptRecord, "bound to its associated data")
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x40
			_, err = s.Open(ctx, bad, ad)
			require.ErrorIs(t, err, securestore.ErrCorruptRecord)
		}
		for n := range len(sealed) {
			_, err = s.Open(ctx, sealed[:n], ad)
			require.ErrorIs(t, err, securestore.ErrCorruptRecord)
		}
		empty, err := s.Seal(ctx, nil, nil)
		require.NoError(t, err)
		got, err = s.Open(ctx, empty, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	}
}

func TestSealerRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1, k2 := securestore.GenerateSealerKey(1), securestore.GenerateSealerKey(2)
	old, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k1}})
	require.NoError(t, err)
	sealedOld, err := old.Seal(ctx, []byte("signing key"), []byte("kid-1"))
	require.NoError(t, err)

	// The operator adds key 2 as current and keeps key 1, and moves to
	// XChaCha20-Poly1305 at the same time.
	rotated, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k2, k1}, AEAD: securestore.XChaCha20Poly1305})
	require.NoError(t, err)
	got, err := rotated.Open(ctx, sealedOld, []byte("kid-1"))
	require.NoError(t, err, "old values stay openable")
	require.Equal(t, []byte("signing key"), got)

	resealed, changed, err := rotated.Reseal(ctx, sealedOld, []byte("kid-1"))
	require.NoError(t, err)
	require.True(t, changed)
	same, changed, err := rotated.Reseal(ctx, resealed, []byte("kid-1"))
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, resealed, same)
	_, _, err = rotated.Reseal(ctx, resealed, []byte("kid-2"))
	require.ErrorIs(t, err, securestore.ErrCorruptRecord)

	// Once key 1 is dropped, values still under it say so.
	only2, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k2}})
	require.NoError(t, err)
	got, err = only2.Open(ctx, resealed, []byte("kid-1"))
	require.NoError(t, err)
	require.Equal(t, []byte("signing key"), got)
	_, err = only2.Open(ctx, sealedOld, []byte("kid-1"))
	require.ErrorIs(t, err, securestore.ErrCorruptRecord)
	require.Contains(t, err.Error(), "key 1")

	// Same id, other secret: a mix-up of configurations is caught.
	imposter, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{securestore.GenerateSealerKey(2)}})
	require.NoError(t, err)
	_, err = imposter.Open(ctx, resealed, []byte("kid-1"))
	require.ErrorIs(t, err, securestore.ErrCorruptRecord)
}

func TestSealerConfigErrors(t *testing.T) {
	t.Parallel()
	k := securestore.GenerateSealerKey(1)
	for name, cfg := range map[string]securestore.SealerConfig{
		"no keys":      {},
		"id zero":      {Keys: []securestore.SealerKey{{ID: 0, Secret: k.Secret}}},
		"short secret": {Keys: []securestore.SealerKey{{ID: 1, Secret: k.Secret[:16]}}},
		"duplicate":    {Keys: []securestore.SealerKey{k, securestore.GenerateSealerKey(1)}},
	} {
		_, err := securestore.NewSealer(cfg)
		require.ErrorIs(t, err, securestore.ErrInvalidKey, name)
		require.NotContains(t, err.Error(), fmt.Sprint(k.Secret[:4]), name)
	}
	_, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{k}, AEAD: 7})
	require.ErrorIs(t, err, securestore.ErrUnknownAlgorithm)
}

func TestSealerKeysText(t *testing.T) {
	t.Parallel()
	k2, k1 := securestore.GenerateSealerKey(2), securestore.GenerateSealerKey(1)
	text := securestore.FormatSealerKeys(k2, k1)
	keys, err := securestore.ParseSealerKeys(" " + text + "\n")
	require.NoError(t, err)
	require.Equal(t, []securestore.SealerKey{k2, k1}, keys)

	secretText := strings.SplitN(strings.Split(text, ",")[0], ":", 2)[1]
	for _, bad := range []string{"", "2", "0:" + secretText, "x:" + secretText, "2:" + secretText[:10], "2:" + secretText + ",", "-1:" + secretText} {
		_, err := securestore.ParseSealerKeys(bad)
		require.ErrorIs(t, err, securestore.ErrInvalidKey, bad)
		if len(bad) > 12 {
			require.NotContains(t, err.Error(), secretText[:10], "errors never quote the secret")
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, k2)
		require.Equal(t, "SealerKey(2)", out, verb)
	}
	require.NotContains(t, fmt.Sprintf("%v", []securestore.SealerKey{k2}), secretText[:10])
}

func TestSealerKeyWrapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := mustSealer(t) // stands in for a KMS
	k := securestore.GenerateSealerKey(7)
	wrapped, err := securestore.WrapSealerKey(ctx, kms, k)
	require.NoError(t, err)
	got, err := securestore.UnwrapSealerKey(ctx, kms, 7, wrapped)
	require.NoError(t, err)
	require.Equal(t, k, got)
	_, err = securestore.UnwrapSealerKey(ctx, kms, 8, wrapped)
	require.Error(t, err, "a wrapped key is bound to its id")
}
