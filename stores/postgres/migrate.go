package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The migrations are SQL files named NNNN_description.sql, applied in
// increasing NNNN. A released file is never edited: changes come as new
// files.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the embedded list, in increasing version; loadMigrations
// has checked that versions run 1, 2, 3... without gaps.
var migrations, migrationsErr = loadMigrations(migrationFiles)

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("moat/postgres: migration %s is not named NNNN_description.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("moat/postgres: migrations must be numbered 1, 2, 3...: found %s at position %d", m.name, i+1)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("moat/postgres: no migrations embedded")
	}
	return out, nil
}

// SchemaVersion is the schema version this code needs: the highest
// embedded migration.
func SchemaVersion() int { return len(migrations) }

// The ledger of applied migrations. Migrate creates it; it is the only
// table not created by a migration file.
const createLedger = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrateLock is taken (for the transaction) by every Migrate: the first
// key names this module, the second the schema being migrated, so that
// instances migrating one schema wait for each other and other schemas
// are not held up.
const migrateLock = `SELECT pg_advisory_xact_lock(hashtext('moat/postgres migrate'), hashtext(coalesce(current_schema(), '')))`

// Migrate brings the schema (in the pool's search_path, normally
// "public") to [SchemaVersion]. It runs every missing migration and
// records it in the table schema_migrations, all in one transaction that
// holds a PostgreSQL advisory lock: several instances starting at once
// apply each migration once, the others wait and find nothing to do. Run
// on an up-to-date schema it changes nothing. On a schema migrated by
// newer code it changes nothing and returns [ErrSchemaTooNew].
//
// Call it explicitly before [New], at deployment or at startup; the role
// it connects as needs the right to create tables in the schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if migrationsErr != nil {
		return migrationsErr
	}
	if pool == nil {
		return errors.New("moat/postgres: Migrate needs a pool")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return inTx(ctx, pool, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrateLock); err != nil {
			return dbError("migrate: taking the migration lock", err)
		}
		if _, err := tx.Exec(ctx, createLedger); err != nil {
			return dbError("migrate: creating schema_migrations", err)
		}
		current, err := appliedVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > SchemaVersion() {
			return tooNew(current)
		}
		for _, m := range migrations[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return dbError("migrate: applying "+m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return dbError("migrate: recording "+m.name, err)
			}
		}
		return nil
	})
}

func tooNew(v int) error {
	return fmt.Errorf("%w: database at version %d, this code knows up to %d", ErrSchemaTooNew, v, SchemaVersion())
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func appliedVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, dbError("reading schema_migrations", err)
	}
	return v, nil
}

// CheckSchema reports whether the schema in the pool's search_path is at
// the version this code needs: nil when it is, [ErrSchemaOutdated] when
// it was not migrated (or only partly), [ErrSchemaTooNew] when newer code
// migrated it, and a database error when PostgreSQL cannot be asked. [New]
// calls it.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	if migrationsErr != nil {
		return migrationsErr
	}
	if pool == nil {
		return errors.New("moat/postgres: CheckSchema needs a pool")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return dbError("checking the schema", err)
	}
	if !exists {
		return fmt.Errorf("%w: no schema_migrations table", ErrSchemaOutdated)
	}
	v, err := appliedVersion(ctx, pool)
	if err != nil {
		return err
	}
	switch {
	case v > SchemaVersion():
		return tooNew(v)
	case v < SchemaVersion():
		return fmt.Errorf("%w: database at version %d, this code needs %d", ErrSchemaOutdated, v, SchemaVersion())
	}
	return nil
}
