package update

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTripFullAndDelta(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dir = t.TempDir() // on disk: the real sync path
	ctx := context.Background()
	e.publish(genTree(300, 1), 1, false)
	c := e.client()

	u, err := c.Check(ctx)
	require.NoError(t, err)
	require.NotNil(t, u)
	require.EqualValues(t, 0, u.From)
	require.NoError(t, c.Apply(ctx, u))
	requireTree(t, c.Path(), genTree(300, 1))
	require.EqualValues(t, 1, c.InstalledVersion())

	u, err = c.Check(ctx)
	require.NoError(t, err)
	require.Nil(t, u)

	e.publish(genTree(300, 2), 2, false)
	e.publish(genTree(300, 3), 3, false)
	u, err = c.Check(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, u.Manifest.BundleVersion)
	require.EqualValues(t, 1, u.From, "a delta from the installed version")
	require.NoError(t, c.Apply(ctx, u))
	requireTree(t, c.Path(), genTree(300, 3))

	require.NoError(t, c.Rollback(ctx))
	requireTree(t, c.Path(), genTree(300, 1))
	u, err = c.Check(ctx)
	require.NoError(t, err)
	require.Nil(t, u, "the rolled-back version is not offered again")
}
