package update_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/update"
	"github.com/moatsec/moat/update/updatetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	updatetest.Run(t, func(t *testing.T) update.Store { return update.NewMemoryStore() })
}

func TestFileStoreConformance(t *testing.T) {
	t.Parallel()
	updatetest.Run(t, func(t *testing.T) update.Store {
		s, err := update.NewFileStore(t.TempDir())
		require.NoError(t, err)
		return s
	})
}
