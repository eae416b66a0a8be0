// Package attesttest is the conformance suite for [attest.KeyStore]
// implementations. The in-memory store runs it in this module; a
// PostgreSQL store runs it unchanged against a real database.
//
//	func TestKeyStore(t *testing.T) {
//		attesttest.RunKeyStore(t, func(t *testing.T) attest.KeyStore {
//			return attest.NewMemoryKeyStore()
//		})
//	}
//
// The key store keeps no expiring state, so the suite needs no clock.
package attesttest

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/attest"
)

// NewKeyStore returns an empty store, or one in which the key ids the
// suite makes (32 random bytes) cannot collide with other tests' keys.
type NewKeyStore func(t *testing.T) attest.KeyStore

func randomKeyID(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func record(t *testing.T) attest.KeyRecord {
	return attest.KeyRecord{
		KeyID: randomKeyID(t), PublicKey: []byte("pkix der"), Counter: 0, Receipt: []byte("receipt"),
		AppID: "TEAM123456.com.example.app", Environment: attest.Production, KeyThumbprint: "jkt",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// RunKeyStore runs the suite against stores made by newStore.
func RunKeyStore(t *testing.T, newStore NewKeyStore) {
	ctx := context.Background()

	t.Run("CreateAndGet", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		require.NoError(t, s.CreateKey(ctx, rec))
		got, err := s.Key(ctx, rec.KeyID)
		require.NoError(t, err)
		require.Equal(t, rec.KeyID, got.KeyID)
		require.Equal(t, rec.PublicKey, got.PublicKey)
		require.Equal(t, rec.Counter, got.Counter)
		require.Equal(t, rec.Receipt, got.Receipt)
		require.Equal(t, rec.AppID, got.AppID)
		require.Equal(t, rec.Environment, got.Environment)
		require.Equal(t, rec.KeyThumbprint, got.KeyThumbprint)
		require.True(t, rec.CreatedAt.Equal(got.CreatedAt), "CreatedAt %v != %v", got.CreatedAt, rec.CreatedAt)
	})

	t.Run("CreateTwiceIsErrKeyExists", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		require.NoError(t, s.CreateKey(ctx, rec))
		rec2 := rec
		rec2.Counter = 5
		require.ErrorIs(t, s.CreateKey(ctx, rec2), attest.ErrKeyExists)
		got, err := s.Key(ctx, rec.KeyID)
		require.NoError(t, err)
		require.Equal(t, uint32(0), got.Counter, "a refused create changed the record")
	})

	t.Run("ConcurrentCreateExactlyOne", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := s.CreateKey(ctx, rec); err == nil {
					wins.Add(1)
				} else {
					require.ErrorIs(t, err, attest.ErrKeyExists)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("MissingIsErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.Key(ctx, randomKeyID(t))
		require.ErrorIs(t, err, attest.ErrNotFound)
		require.ErrorIs(t, s.UpdateCounter(ctx, randomKeyID(t), 0, 1), attest.ErrNotFound)
	})

	t.Run("UpdateCounterCompareAndSet", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		require.NoError(t, s.CreateKey(ctx, rec))
		require.NoError(t, s.UpdateCounter(ctx, rec.KeyID, 0, 3))
		require.ErrorIs(t, s.UpdateCounter(ctx, rec.KeyID, 0, 4), attest.ErrCounterConflict)
		require.ErrorIs(t, s.UpdateCounter(ctx, rec.KeyID, 2, 4), attest.ErrCounterConflict)
		require.NoError(t, s.UpdateCounter(ctx, rec.KeyID, 3, 4294967295))
		got, err := s.Key(ctx, rec.KeyID)
		require.NoError(t, err)
		require.Equal(t, uint32(4294967295), got.Counter)
		require.Equal(t, rec.Receipt, got.Receipt, "UpdateCounter changed other fields")
	})

	t.Run("ConcurrentUpdateExactlyOne", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		require.NoError(t, s.CreateKey(ctx, rec))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				if err := s.UpdateCounter(ctx, rec.KeyID, 0, uint32(i+1)); err == nil {
					wins.Add(1)
				} else {
					require.ErrorIs(t, err, attest.ErrCounterConflict)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		require.NoError(t, s.CreateKey(ctx, rec))
		require.NoError(t, s.DeleteKey(ctx, rec.KeyID))
		_, err := s.Key(ctx, rec.KeyID)
		require.ErrorIs(t, err, attest.ErrNotFound)
		require.NoError(t, s.DeleteKey(ctx, rec.KeyID), "deleting a missing key")
		require.NoError(t, s.CreateKey(ctx, rec), "create after delete")
	})

	t.Run("ReturnedRecordIsACopy", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		id := append([]byte(nil), rec.KeyID...)
		require.NoError(t, s.CreateKey(ctx, rec))
		rec.Receipt[0] = 'X'
		got, err := s.Key(ctx, id)
		require.NoError(t, err)
		require.Equal(t, []byte("receipt"), got.Receipt, "store kept the caller's slice")
		got.Receipt[0] = 'Y'
		again, err := s.Key(ctx, id)
		require.NoError(t, err)
		require.Equal(t, []byte("receipt"), again.Receipt, "store returned its own slice")
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rec := record(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, s.CreateKey(cctx, rec))
		_, err := s.Key(ctx, rec.KeyID)
		require.ErrorIs(t, err, attest.ErrNotFound, "a cancelled create stored the key")
		require.NoError(t, s.CreateKey(ctx, rec))
		require.Error(t, s.UpdateCounter(cctx, rec.KeyID, 0, 1))
		_, err = s.Key(cctx, rec.KeyID)
		require.Error(t, err)
		got, err := s.Key(ctx, rec.KeyID)
		require.NoError(t, err)
		require.Equal(t, uint32(0), got.Counter)
	})
}
