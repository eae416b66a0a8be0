// Package stepuptest is the conformance suite for the durable stores of
// package stepup: [stepup.OTPStore], [stepup.RecoveryStore],
// [stepup.PINStore] and [stepup.DeviceKeyStore]. The in-memory stores run
// it in this module; the PostgreSQL stores run it unchanged.
//
//	func TestOTPStore(t *testing.T) {
//		stepuptest.RunOTPStore(t, func(t *testing.T) stepup.OTPStore { return stepup.NewMemoryOTPStore() })
//	}
//
// Each factory must return an empty store (or one whose records cannot
// collide with other tests': the suite uses subjects derived from the
// test's name).
package stepuptest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/stepup"
)

// subject returns a subject unique to the running (sub)test.
func subject(t *testing.T, name string) string { return "stepuptest:" + t.Name() + ":" + name }

// at is a fixed instant the suite stores, truncated to microseconds so
// that databases with microsecond timestamps round-trip it.
var at = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// RunOTPStore runs the conformance suite for an [stepup.OTPStore].
func RunOTPStore(t *testing.T, newStore func(t *testing.T) stepup.OTPStore) {
	ctx := context.Background()
	enrollment := func(t *testing.T, kind stepup.OTPKind, id string, counter int64) stepup.OTPEnrollment {
		return stepup.OTPEnrollment{Subject: subject(t, "alice"), Kind: kind, ID: id, SealedSecret: []byte("sealed-" + id),
			Algorithm: stepup.SHA256, Digits: 8, Period: 30, Counter: counter, CreatedAt: at}
	}
	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, subject(t, "nobody"), stepup.KindTOTP)
		require.ErrorIs(t, err, stepup.ErrNotFound)
	})
	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 57_000_000)
		require.NoError(t, s.Put(ctx, e))
		got, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		require.True(t, got.CreatedAt.Equal(at))
		got.CreatedAt = at
		require.Equal(t, e, got)
		// Kinds are separate records.
		_, err = s.Get(ctx, e.Subject, stepup.KindHOTP)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		h := enrollment(t, stepup.KindHOTP, "id2", 10)
		h.Period = 0
		require.NoError(t, s.Put(ctx, h))
		got, err = s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		require.Equal(t, "id1", got.ID)
	})
	t.Run("GetReturnsACopy", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 1)
		require.NoError(t, s.Put(ctx, e))
		got, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		got.SealedSecret[0] ^= 0xff
		again, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		require.Equal(t, e.SealedSecret, again.SealedSecret)
	})
	t.Run("PutReplaces", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, enrollment(t, stepup.KindTOTP, "old", 100)))
		require.NoError(t, s.Put(ctx, enrollment(t, stepup.KindTOTP, "new", 5)))
		got, err := s.Get(ctx, subject(t, "alice"), stepup.KindTOTP)
		require.NoError(t, err)
		require.Equal(t, "new", got.ID)
		require.Equal(t, int64(5), got.Counter, "a replaced enrollment starts from its own counter")
	})
	t.Run("AdvanceOnlyForward", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 100)
		require.NoError(t, s.Put(ctx, e))
		require.ErrorIs(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 100), stepup.ErrReplay)
		require.ErrorIs(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 99), stepup.ErrReplay)
		require.NoError(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 101))
		require.ErrorIs(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 101), stepup.ErrReplay)
		require.NoError(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 1<<40))
		got, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		require.Equal(t, int64(1<<40), got.Counter)
	})
	t.Run("AdvanceChecksID", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 100)
		require.NoError(t, s.Put(ctx, e))
		require.ErrorIs(t, s.Advance(ctx, e.Subject, stepup.KindTOTP, "other", 200), stepup.ErrNotFound)
		require.ErrorIs(t, s.Advance(ctx, e.Subject, stepup.KindHOTP, "id1", 200), stepup.ErrNotFound)
		require.ErrorIs(t, s.Advance(ctx, subject(t, "nobody"), stepup.KindTOTP, "id1", 200), stepup.ErrNotFound)
		got, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.NoError(t, err)
		require.Equal(t, int64(100), got.Counter)
	})
	t.Run("AdvanceConcurrentExactlyOne", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 100)
		require.NoError(t, s.Put(ctx, e))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				err := s.Advance(ctx, e.Subject, stepup.KindTOTP, "id1", 101)
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, stepup.ErrReplay) {
					t.Errorf("Advance: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})
	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		e := enrollment(t, stepup.KindTOTP, "id1", 1)
		require.NoError(t, s.Put(ctx, e))
		require.NoError(t, s.Delete(ctx, e.Subject, stepup.KindTOTP))
		_, err := s.Get(ctx, e.Subject, stepup.KindTOTP)
		require.ErrorIs(t, err, stepup.ErrNotFound)
		require.NoError(t, s.Delete(ctx, e.Subject, stepup.KindTOTP), "deleting a missing record is not an error")
	})
}
