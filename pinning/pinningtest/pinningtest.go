// Package pinningtest is the conformance suite for
// [pinning.DocumentStore] implementations. The memory and file stores run
// it in this module; a store for another backend (a mobile keychain, a
// database) runs it unchanged:
//
//	func TestDocumentStore(t *testing.T) {
//		pinningtest.RunDocumentStore(t, func(t *testing.T) pinning.DocumentStore {
//			return newMyStore(t)
//		})
//	}
package pinningtest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/pinning"
)

// RunDocumentStore runs the suite. newStore returns an empty store for
// each subtest.
func RunDocumentStore(t *testing.T, newStore func(t *testing.T) pinning.DocumentStore) {
	ctx := context.Background()

	t.Run("LoadEmpty", func(t *testing.T) {
		_, err := newStore(t).Load(ctx)
		require.ErrorIs(t, err, pinning.ErrNotFound)
	})

	t.Run("SaveLoadReplace", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Save(ctx, []byte("first.document.v1")))
		got, err := s.Load(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("first.document.v1"), got)
		require.NoError(t, s.Save(ctx, []byte("v2")))
		got, err = s.Load(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("v2"), got, "a shorter document replaces a longer one whole")
	})

	t.Run("NoAliasing", func(t *testing.T) {
		s := newStore(t)
		doc := []byte("document")
		require.NoError(t, s.Save(ctx, doc))
		doc[0] = 'X'
		got, err := s.Load(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("document"), got, "Save must not keep the caller's slice")
		got[0] = 'Y'
		again, err := s.Load(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("document"), again, "Load must return a copy")
	})

	t.Run("ConcurrentSavesAreWhole", func(t *testing.T) {
		s := newStore(t)
		docs := make([][]byte, 8)
		for i := range docs {
			docs[i] = bytes.Repeat([]byte(fmt.Sprint(i)), 4096)
		}
		var wg sync.WaitGroup
		for i := range docs {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if err := s.Save(ctx, docs[i]); err != nil {
					t.Error(err)
				}
			}()
			go func() {
				defer wg.Done()
				got, err := s.Load(ctx)
				if err == pinning.ErrNotFound {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if !containsWhole(docs, got) {
					t.Errorf("Load returned a mix of documents (%d bytes)", len(got))
				}
			}()
		}
		wg.Wait()
		got, err := s.Load(ctx)
		require.NoError(t, err)
		require.True(t, containsWhole(docs, got))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, s.Save(cctx, []byte("doc")))
		_, err := s.Load(ctx)
		require.ErrorIs(t, err, pinning.ErrNotFound, "a cancelled Save stores nothing")
	})
}

func containsWhole(docs [][]byte, got []byte) bool {
	for _, d := range docs {
		if bytes.Equal(d, got) {
			return true
		}
	}
	return false
}
