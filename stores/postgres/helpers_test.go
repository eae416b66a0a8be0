package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// envURL names the database the tests use. Every test works in a schema
// of its own (random name, dropped at the end), so parallel packages and
// reruns never collide and the database keeps nothing.
const envURL = "MOAT_TEST_POSTGRES_URL"

var (
	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if admin != nil {
		admin.Close()
	}
	os.Exit(code)
}

// adminPool returns the pool that creates and drops the test schemas. It
// skips the test when envURL is unset and fails it when the server does
// not answer.
func adminPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv(envURL)
	if url == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to run them, for example\n\t%s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...", envURL, envURL)
	}
	adminOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 4
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, adminErr = pgxpool.NewWithConfig(ctx, cfg)
		if adminErr == nil {
			adminErr = admin.Ping(ctx)
		}
	})
	if adminErr != nil {
		t.Fatalf("%s is set but PostgreSQL does not answer: %v", envURL, adminErr)
	}
	return admin
}

// emptySchema returns a pool whose search_path is a new, empty schema,
// dropped when the test ends.
func emptySchema(t *testing.T) *pgxpool.Pool {
	t.Helper()
	a := adminPool(t)
	ctx := context.Background()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	name := "moat_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	_, err = a.Exec(ctx, "CREATE SCHEMA "+ident)
	require.NoError(t, err)
	cfg := a.Config().Copy()
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			t.Errorf("dropping test schema %s: %v", name, err)
		}
	})
	return pool
}

// migratedSchema is emptySchema after Migrate.
func migratedSchema(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := emptySchema(t)
	require.NoError(t, Migrate(context.Background(), pool))
	return pool
}

// newTestStores returns stores on a new, migrated schema.
func newTestStores(t *testing.T, cfg Config) *Stores {
	t.Helper()
	s, err := New(context.Background(), migratedSchema(t), cfg)
	require.NoError(t, err)
	return s
}
