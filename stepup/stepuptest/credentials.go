package stepuptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/stepup"
)

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// RunRecoveryStore runs the conformance suite for a [stepup.RecoveryStore].
func RunRecoveryStore(t *testing.T, newStore func(t *testing.T) stepup.RecoveryStore) {
	ctx := context.Background()
	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		n, err := s.Count(ctx, subject(t, "nobody"))
		require.NoError(t, err)
		require.Zero(t, n)
		require.ErrorIs(t, s.Use(ctx, subject(t, "nobody"), digest("a")), stepup.ErrNotFound)
	})
	t.Run("UseOnce", func(t *testing.T) {
		s := newStore(t)
		alice, bob := subject(t, "alice"), subject(t, "bob")
		require.NoError(t, s.Replace(ctx, alice, [][]byte{digest("a"), digest("b"), digest("c")}))
		require.NoError(t, s.Replace(ctx, bob, [][]byte{digest("a")}))
		require.ErrorIs(t, s.Use(ctx, alice, digest("x")), stepup.ErrNotFound)
		require.NoError(t, s.Use(ctx, alice, digest("b")))
		require.ErrorIs(t, s.Use(ctx, alice, digest("b")), stepup.ErrNotFound)
		n, err := s.Count(ctx, alice)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = s.Count(ctx, bob)
		require.NoError(t, err)
		require.Equal(t, 1, n, "sets are per subject")
	})
	t.Run("ReplaceDropsOldSet", func(t *testing.T) {
		s := newStore(t)
		alice := subject(t, "alice")
		require.NoError(t, s.Replace(ctx, alice, [][]byte{digest("a"), digest("b")}))
		require.NoError(t, s.Replace(ctx, alice, [][]byte{digest("c")}))
		require.ErrorIs(t, s.Use(ctx, alice, digest("a")), stepup.ErrNotFound)
		require.NoError(t, s.Use(ctx, alice, digest("c")))
		require.NoError(t, s.Replace(ctx, alice, [][]byte{digest("d")}))
		require.NoError(t, s.Replace(ctx, alice, nil))
		n, err := s.Count(ctx, alice)
		require.NoError(t, err)
		require.Zero(t, n)
	})
	t.Run("ConcurrentUseExactlyOne", func(t *testing.T) {
		s := newStore(t)
		alice := subject(t, "alice")
		require.NoError(t, s.Replace(ctx, alice, [][]byte{digest("a"), digest("b")}))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				err := s.Use(ctx, alice, digest("a"))
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, stepup.ErrNotFound) {
					t.Errorf("Use: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
		n, err := s.Count(ctx, alice)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// RunPINStore runs the conformance suite for a [stepup.PINStore].
func RunPINStore(t *testing.T, newStore func(t *testing.T) stepup.PINStore) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		dev := subject(t, "watch")
		_, err := s.Get(ctx, dev)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		r := stepup.PINRecord{DeviceID: dev, Subject: subject(t, "alice"), Hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", CreatedAt: at}
		require.NoError(t, s.Put(ctx, r))
		got, err := s.Get(ctx, dev)
		require.NoError(t, err)
		require.True(t, got.CreatedAt.Equal(at))
		got.CreatedAt = at
		require.Equal(t, r, got)
		r.Hash, r.Subject = "other", subject(t, "bob")
		require.NoError(t, s.Put(ctx, r))
		got, err = s.Get(ctx, dev)
		require.NoError(t, err)
		require.Equal(t, "other", got.Hash)
		require.NoError(t, s.Delete(ctx, dev))
		_, err = s.Get(ctx, dev)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		require.NoError(t, s.Delete(ctx, dev), "deleting a missing record is not an error")
	})
}

// RunDeviceKeyStore runs the conformance suite for a [stepup.DeviceKeyStore].
func RunDeviceKeyStore(t *testing.T, newStore func(t *testing.T) stepup.DeviceKeyStore) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		client := subject(t, "client")
		_, err := s.Get(ctx, client)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		k := stepup.DeviceKey{ClientID: client, Subject: subject(t, "alice"), PublicKey: &priv.PublicKey, Biometry: stepup.AMRFace, CreatedAt: at}
		require.NoError(t, s.Put(ctx, k))
		got, err := s.Get(ctx, client)
		require.NoError(t, err)
		require.True(t, got.PublicKey.Equal(&priv.PublicKey))
		require.True(t, got.CreatedAt.Equal(at))
		require.Equal(t, k.Subject, got.Subject)
		require.Equal(t, k.Biometry, got.Biometry)
		k.Biometry = ""
		require.NoError(t, s.Put(ctx, k))
		got, err = s.Get(ctx, client)
		require.NoError(t, err)
		require.Empty(t, got.Biometry)
		require.NoError(t, s.Delete(ctx, client))
		_, err = s.Get(ctx, client)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		require.NoError(t, s.Delete(ctx, client))
	})
}
