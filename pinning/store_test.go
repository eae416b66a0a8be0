package pinning_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/pinning"
	"github.com/moatsec/moat/pinning/pinningtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	pinningtest.RunDocumentStore(t, func(*testing.T) pinning.DocumentStore { return &pinning.MemoryStore{} })
}

func TestFileStoreConformance(t *testing.T) {
	t.Parallel()
	pinningtest.RunDocumentStore(t, func(t *testing.T) pinning.DocumentStore {
		s, err := pinning.NewFileStore(filepath.Join(t.TempDir(), "pins.jws"))
		require.NoError(t, err)
		return s
	})
}

func TestFileStoreErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := pinning.NewFileStore("")
	require.Error(t, err)

	dir := t.TempDir()
	big := filepath.Join(dir, "big.jws")
	require.NoError(t, os.WriteFile(big, make([]byte, pinning.MaxDocumentBytes+1), 0o600))
	s, err := pinning.NewFileStore(big)
	require.NoError(t, err)
	_, err = s.Load(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, pinning.ErrNotFound)

	s, err = pinning.NewFileStore(filepath.Join(dir, "missing-dir", "pins.jws"))
	require.NoError(t, err)
	require.Error(t, s.Save(ctx, []byte("doc")))
	_, err = s.Load(ctx)
	require.ErrorIs(t, err, pinning.ErrNotFound)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")
}
