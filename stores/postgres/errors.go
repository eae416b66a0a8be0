package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrSchemaTooNew reports a database whose schema was migrated by a
	// newer version of this module than the running one. The code refuses
	// to use it (it may not understand the tables any more): deploy the
	// newer code, or restore the database.
	ErrSchemaTooNew = errors.New("moat/postgres: database schema is newer than this code knows; upgrade the code")
	// ErrSchemaOutdated reports a database that has not been migrated to
	// the version this code needs (or not at all): call [Migrate] first.
	ErrSchemaOutdated = errors.New("moat/postgres: database schema is older than this code needs; call Migrate")
)

// dbError wraps an error of the database driver with the operation that
// failed. Operations never name keys, ids or values: a kv key can be a
// single-use nonce, a record can hold a hash.
func dbError(op string, err error) error {
	return fmt.Errorf("moat/postgres: %s: %w", op, err)
}

// inTx runs fn in a transaction and commits it. Errors of fn come back as
// they are (sentinels stay sentinels); failures to begin or commit are
// wrapped as op.
func inTx(ctx context.Context, db *pgxpool.Pool, op string, fn func(tx pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return dbError(op, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(op, err)
	}
	return nil
}
