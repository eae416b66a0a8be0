package postgres

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	require.NoError(t, migrationsErr)
	require.GreaterOrEqual(t, SchemaVersion(), 1)
	for i, m := range migrations {
		require.Equal(t, i+1, m.version)
		require.NotEmpty(t, m.sql)
	}
}

func TestLoadMigrationsRefusesBadSets(t *testing.T) {
	t.Parallel()
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	for name, fsys := range map[string]fstest.MapFS{
		"empty":     {},
		"bad name":  {"migrations/init.sql": file},
		"zero":      {"migrations/0000_zero.sql": file},
		"gap":       {"migrations/0001_a.sql": file, "migrations/0003_c.sql": file},
		"duplicate": {"migrations/0001_a.sql": file, "migrations/001_b.sql": file},
	} {
		_, err := loadMigrations(fsys)
		require.Error(t, err, name)
	}
	ms, err := loadMigrations(fstest.MapFS{"migrations/0002_b.sql": file, "migrations/0001_a.sql": file})
	require.NoError(t, err)
	require.Equal(t, "0001_a", ms[0].name)
	require.Equal(t, "0002_b", ms[1].name)
}

type ledgerRow struct {
	version   int
	name      string
	appliedAt time.Time
}

func ledger(t *testing.T, pool *pgxpool.Pool) []ledgerRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		require.NoError(t, rows.Scan(&r.version, &r.name, &r.appliedAt))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptySchema(t)

	require.ErrorIs(t, CheckSchema(ctx, pool), ErrSchemaOutdated, "an empty schema")
	_, err := New(ctx, pool, Config{})
	require.ErrorIs(t, err, ErrSchemaOutdated, "New refuses an unmigrated schema")

	require.NoError(t, Migrate(ctx, pool))
	first := ledger(t, pool)
	require.Len(t, first, SchemaVersion())
	require.Equal(t, 1, first[0].version)
	require.Equal(t, migrations[0].name, first[0].name)
	require.NoError(t, CheckSchema(ctx, pool))
	_, err = New(ctx, pool, Config{})
	require.NoError(t, err)

	// Running again is a no-op.
	require.NoError(t, Migrate(ctx, pool))
	require.Equal(t, first, ledger(t, pool), "a second Migrate changes nothing")
	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables))
	require.Greater(t, tables, 10)
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedSchema(t)
	future := SchemaVersion() + 1
	_, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, future)
	require.NoError(t, err)
	before := ledger(t, pool)

	err = Migrate(ctx, pool)
	require.ErrorIs(t, err, ErrSchemaTooNew)
	require.Contains(t, err.Error(), "version")
	require.Equal(t, before, ledger(t, pool), "a refused Migrate changes nothing")
	require.ErrorIs(t, CheckSchema(ctx, pool), ErrSchemaTooNew)
	s, err := New(ctx, pool, Config{})
	require.ErrorIs(t, err, ErrSchemaTooNew, "New refuses a schema newer than the code")
	require.Nil(t, s)
}

func TestCheckSchemaPartlyMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptySchema(t)
	_, err := pool.Exec(ctx, createLedger)
	require.NoError(t, err)
	require.ErrorIs(t, CheckSchema(ctx, pool), ErrSchemaOutdated, "a ledger without versions")
}

// TestMigrateConcurrent starts several instances at once on one empty
// schema: the advisory lock lets one migrate and the others find nothing
// to do.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := emptySchema(t)
	const n = 6
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		p, err := pgxpool.NewWithConfig(ctx, base.Config().Copy())
		require.NoError(t, err)
		t.Cleanup(p.Close)
		pools[i] = p
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = Migrate(ctx, pools[i])
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, ledger(t, base), SchemaVersion())
	require.NoError(t, CheckSchema(ctx, base))
}

func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	pool := emptySchema(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Migrate(ctx, pool), context.Canceled)
	require.ErrorIs(t, CheckSchema(context.Background(), pool), ErrSchemaOutdated, "a cancelled Migrate did nothing")
}
