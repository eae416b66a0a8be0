// Package securestoretest is the conformance suite for
// [securestore.Backend] implementations. The memory and directory
// backends run it in this module; other backends (a PostgreSQL table, a
// mobile platform's file API) run it unchanged.
//
//	func TestConformance(t *testing.T) {
//		securestoretest.Run(t, securestoretest.Harness{
//			New: func(t *testing.T) securestore.Backend { return securestore.NewMemoryBackend() },
//		})
//	}
package securestoretest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// Harness tells the suite how to make backends.
type Harness struct {
	// New returns an empty backend. Required.
	New func(t *testing.T) securestore.Backend
	// Reopen, for backends that persist, returns a new backend over the
	// same storage as b, as a restarted process would open it. Nil skips
	// the persistence test.
	Reopen func(t *testing.T, b securestore.Backend) securestore.Backend
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()

	t.Run("GetMissing", func(t *testing.T) {
		b := h.New(t)
		_, err := b.Get(ctx, "missing")
		require.ErrorIs(t, err, securestore.ErrNotFound)
	})

	t.Run("PutGetReplace", func(t *testing.T) {
		b := h.New(t)
		require.NoError(t, b.Put(ctx, "k.one", []byte{0, 1, 2, 0xff}))
		v, err := b.Get(ctx, "k.one")
		require.NoError(t, err)
		require.Equal(t, []byte{0, 1, 2, 0xff}, v)
		require.NoError(t, b.Put(ctx, "k.one", []byte("second, longer value")))
		v, err = b.Get(ctx, "k.one")
		require.NoError(t, err)
		require.Equal(t, []byte("second, longer value"), v)
		require.NoError(t, b.Put(ctx, "k.one", []byte("x")))
		v, err = b.Get(ctx, "k.one")
		require.NoError(t, err)
		require.Equal(t, []byte("x"), v, "a shorter value must not keep the old tail")
	})

	t.Run("EmptyAndLargeValues", func(t *testing.T) {
		b := h.New(t)
		require.NoError(t, b.Put(ctx, "empty", nil))
		v, err := b.Get(ctx, "empty")
		require.NoError(t, err)
		require.Empty(t, v)
		big := bytes.Repeat([]byte{0xab, 0xcd}, 1<<19)
		require.NoError(t, b.Put(ctx, "big", big))
		v, err = b.Get(ctx, "big")
		require.NoError(t, err)
		require.Equal(t, big, v)
	})

	t.Run("Delete", func(t *testing.T) {
		b := h.New(t)
		require.NoError(t, b.Delete(ctx, "absent"), "deleting a missing name is not an error")
		require.NoError(t, b.Put(ctx, "x", []byte("v")))
		require.NoError(t, b.Delete(ctx, "x"))
		_, err := b.Get(ctx, "x")
		require.ErrorIs(t, err, securestore.ErrNotFound)
		names, err := b.List(ctx, "")
		require.NoError(t, err)
		require.NotContains(t, names, "x")
	})

	t.Run("List", func(t *testing.T) {
		b := h.New(t)
		names, err := b.List(ctx, "")
		require.NoError(t, err)
		require.Empty(t, names)
		for _, n := range []string{"k.b", "k.a", "d.x.1", "k.c-2", "header", "k_"} {
			require.NoError(t, b.Put(ctx, n, []byte(n)))
		}
		names, err = b.List(ctx, "k.")
		require.NoError(t, err)
		require.Equal(t, []string{"k.a", "k.b", "k.c-2"}, names)
		names, err = b.List(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"d.x.1", "header", "k.a", "k.b", "k.c-2", "k_"}, names)
		names, err = b.List(ctx, "zzz")
		require.NoError(t, err)
		require.Empty(t, names)
	})

	t.Run("InvalidNames", func(t *testing.T) {
		b := h.New(t)
		for _, n := range []string{"", ".hidden", "../escape", "a/b", `a\b`, "Upper", "sp ace", "nul\x00", strings.Repeat("a", securestore.MaxNameLen+1)} {
			require.ErrorIs(t, b.Put(ctx, n, []byte("v")), securestore.ErrInvalidName, "%q", n)
			_, err := b.Get(ctx, n)
			require.ErrorIs(t, err, securestore.ErrInvalidName, "%q", n)
			require.ErrorIs(t, b.Delete(ctx, n), securestore.ErrInvalidName, "%q", n)
		}
		long := strings.Repeat("a", securestore.MaxNameLen)
		require.NoError(t, b.Put(ctx, long, []byte("v")), "a name of MaxNameLen bytes is valid")
		v, err := b.Get(ctx, long)
		require.NoError(t, err)
		require.Equal(t, []byte("v"), v)
		names, err := b.List(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{long}, names, "refused writes store nothing")
	})

	t.Run("CancelledContext", func(t *testing.T) {
		b := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, b.Put(cctx, "x", []byte("v")))
		_, err := b.Get(ctx, "x")
		require.ErrorIs(t, err, securestore.ErrNotFound, "a cancelled Put stores nothing")
		require.NoError(t, b.Put(ctx, "x", []byte("v")))
		_, err = b.Get(cctx, "x")
		require.Error(t, err)
		require.NotErrorIs(t, err, securestore.ErrNotFound)
		require.Error(t, b.Delete(cctx, "x"))
		_, err = b.List(cctx, "")
		require.Error(t, err)
		v, err := b.Get(ctx, "x")
		require.NoError(t, err, "a cancelled Delete removes nothing")
		require.Equal(t, []byte("v"), v)
	})

	t.Run("Concurrent", func(t *testing.T) {
		b := h.New(t)
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers*2)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				val := bytes.Repeat([]byte{byte('a' + w)}, 4096+w)
				errs <- b.Put(ctx, fmt.Sprintf("own-%d", w), val)
				errs <- b.Put(ctx, "shared", val)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for w := range writers {
			v, err := b.Get(ctx, fmt.Sprintf("own-%d", w))
			require.NoError(t, err)
			require.Equal(t, bytes.Repeat([]byte{byte('a' + w)}, 4096+w), v)
		}
		v, err := b.Get(ctx, "shared")
		require.NoError(t, err)
		w := int(v[0] - 'a')
		require.True(t, w >= 0 && w < writers)
		require.Equal(t, bytes.Repeat([]byte{v[0]}, 4096+w), v, "the shared name holds exactly one writer's value")
		names, err := b.List(ctx, "own-")
		require.NoError(t, err)
		require.Len(t, names, writers)
		require.True(t, slices.IsSorted(names))
	})

	if h.Reopen != nil {
		t.Run("Persistence", func(t *testing.T) {
			b := h.New(t)
			require.NoError(t, b.Put(ctx, "kept", []byte("value")))
			require.NoError(t, b.Put(ctx, "gone", []byte("value")))
			require.NoError(t, b.Delete(ctx, "gone"))
			b2 := h.Reopen(t, b)
			v, err := b2.Get(ctx, "kept")
			require.NoError(t, err)
			require.Equal(t, []byte("value"), v)
			_, err = b2.Get(ctx, "gone")
			require.ErrorIs(t, err, securestore.ErrNotFound)
			names, err := b2.List(ctx, "")
			require.NoError(t, err)
			require.Equal(t, []string{"kept"}, names)
		})
	}
}
