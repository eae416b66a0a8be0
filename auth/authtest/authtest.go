// Package authtest is the conformance suite for [auth.ClientStore]
// implementations.
package authtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
)

// RunClientStore runs the suite. newStore returns an empty store, or one
// in which ids made by the suite cannot collide with other data.
func RunClientStore(t *testing.T, newStore func(t *testing.T) auth.ClientStore) {
	ctx := context.Background()
	id := func(t *testing.T, s string) string {
		return fmt.Sprintf("authtest-%s-%d-%s", t.Name(), time.Now().UnixNano(), s)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		jkt, err := auth.Thumbprint(&key.PublicKey)
		require.NoError(t, err)
		c := &auth.Client{
			ID: id(t, "c"), AppID: "com.example.app", AppVersion: "1.2.3", Platform: "ios", Channel: "phone",
			DeviceID: "dev-1", Key: &jose.JSONWebKey{Key: &key.PublicKey}, KeyThumbprint: jkt,
			RegisteredAt: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC),
			Attestation:  map[string]string{"format": "apple-appattest", "verdict": "valid"},
		}
		require.NoError(t, s.CreateClient(ctx, c))
		got, err := s.Client(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, c.ID, got.ID)
		require.Equal(t, c.AppID, got.AppID)
		require.Equal(t, c.AppVersion, got.AppVersion)
		require.Equal(t, c.Platform, got.Platform)
		require.Equal(t, c.Channel, got.Channel)
		require.Equal(t, c.DeviceID, got.DeviceID)
		require.Equal(t, c.KeyThumbprint, got.KeyThumbprint)
		require.True(t, c.RegisteredAt.Equal(got.RegisteredAt))
		require.Equal(t, c.Attestation, got.Attestation)
		gotJKT, err := auth.Thumbprint(got.Key.Key)
		require.NoError(t, err)
		require.Equal(t, jkt, gotJKT, "the stored key must be the registered key")
	})

	t.Run("Confidential", func(t *testing.T) {
		s := newStore(t)
		_, hash, err := auth.NewClientSecret()
		require.NoError(t, err)
		c := &auth.Client{ID: id(t, "svc"), Confidential: true, SecretHash: hash, Scopes: []string{"a", "b"}}
		require.NoError(t, s.CreateClient(ctx, c))
		got, err := s.Client(ctx, c.ID)
		require.NoError(t, err)
		require.True(t, got.Confidential)
		require.Equal(t, hash, got.SecretHash)
		require.Equal(t, []string{"a", "b"}, got.Scopes)
	})

	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Client(ctx, id(t, "nope"))
		require.ErrorIs(t, err, auth.ErrNotFound)
		require.NoError(t, s.DeleteClient(ctx, id(t, "nope")), "deleting a missing client is not an error")
	})

	t.Run("DuplicateRefused", func(t *testing.T) {
		s := newStore(t)
		c := &auth.Client{ID: id(t, "dup"), AppID: "first"}
		require.NoError(t, s.CreateClient(ctx, c))
		err := s.CreateClient(ctx, &auth.Client{ID: c.ID, AppID: "second"})
		require.ErrorIs(t, err, auth.ErrClientExists)
		got, err := s.Client(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, "first", got.AppID, "a refused create changes nothing")
	})

	t.Run("ConcurrentCreateExactlyOne", func(t *testing.T) {
		s := newStore(t)
		cid := id(t, "race")
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				err := s.CreateClient(ctx, &auth.Client{ID: cid, AppID: fmt.Sprint(i)})
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, auth.ErrClientExists) {
					t.Errorf("unexpected error: %v", err)
				}
			}(i)
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		c := &auth.Client{ID: id(t, "del")}
		require.NoError(t, s.CreateClient(ctx, c))
		require.NoError(t, s.DeleteClient(ctx, c.ID))
		_, err := s.Client(ctx, c.ID)
		require.ErrorIs(t, err, auth.ErrNotFound)
	})
}
