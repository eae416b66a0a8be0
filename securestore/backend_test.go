package securestore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
	"github.com/moatsec/moat/securestore/securestoretest"
)

func TestMemoryBackendConformance(t *testing.T) {
	t.Parallel()
	securestoretest.Run(t, securestoretest.Harness{
		New: func(t *testing.T) securestore.Backend { return securestore.NewMemoryBackend() },
	})
}

func TestDirBackendConformance(t *testing.T) {
	t.Parallel()
	securestoretest.Run(t, securestoretest.Harness{
		New: func(t *testing.T) securestore.Backend {
			b, err := securestore.NewDirBackend(filepath.Join(t.TempDir(), "store"))
			require.NoError(t, err)
			return b
		},
		Reopen: func(t *testing.T, b securestore.Backend) securestore.Backend {
			b2, err := securestore.NewDirBackend(b.(*securestore.DirBackend).Dir())
			require.NoError(t, err)
			return b2
		},
	})
}

func TestDirBackendFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := securestore.NewDirBackend(dir)
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, "k.x", []byte("v")))
	fi, err := os.Stat(filepath.Join(dir, "k.x"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "records are private to the user")

	// Leftovers of a crash and foreign files are not names.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("partial"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.TXT"), []byte("x"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	names, err := b.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"k.x"}, names)

	_, err = securestore.NewDirBackend(filepath.Join(dir, "k.x"))
	require.Error(t, err, "a file is not a directory")
	_, err = securestore.NewDirBackend("")
	require.Error(t, err)
}
