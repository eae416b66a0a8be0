package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/attest"
)

// AttestKeys is the PostgreSQL [attest.KeyStore] (table attest_keys: App
// Attest keys, receipts and assertion counters, keyed by key id).
type AttestKeys struct {
	db *pgxpool.Pool
}

// CreateKey implements [attest.KeyStore]. One INSERT ... ON CONFLICT DO
// NOTHING: of concurrent creators of one key id exactly one inserts, the
// others get [attest.ErrKeyExists].
func (s *AttestKeys) CreateKey(ctx context.Context, rec attest.KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rec.KeyID) == 0 {
		return errors.New("moat/postgres: empty App Attest key id")
	}
	tag, err := s.db.Exec(ctx, `
INSERT INTO attest_keys (key_id, public_key, counter, receipt, app_id, environment, key_thumbprint, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (key_id) DO NOTHING`,
		rec.KeyID, rec.PublicKey, int64(rec.Counter), rec.Receipt, rec.AppID, string(rec.Environment), rec.KeyThumbprint, rec.CreatedAt)
	if err != nil {
		return dbError("creating App Attest key", err)
	}
	if tag.RowsAffected() == 0 {
		return attest.ErrKeyExists
	}
	return nil
}

// Key implements [attest.KeyStore].
func (s *AttestKeys) Key(ctx context.Context, keyID []byte) (attest.KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return attest.KeyRecord{}, err
	}
	var rec attest.KeyRecord
	var counter int64
	var env string
	err := s.db.QueryRow(ctx, `
SELECT key_id, public_key, counter, receipt, app_id, environment, key_thumbprint, created_at
FROM attest_keys WHERE key_id = $1`, keyID).
		Scan(&rec.KeyID, &rec.PublicKey, &counter, &rec.Receipt, &rec.AppID, &env, &rec.KeyThumbprint, &rec.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return attest.KeyRecord{}, attest.ErrNotFound
	}
	if err != nil {
		return attest.KeyRecord{}, dbError("reading App Attest key", err)
	}
	rec.Counter, rec.Environment, rec.CreatedAt = uint32(counter), attest.Environment(env), rec.CreatedAt.UTC()
	return rec, nil
}

// UpdateCounter implements [attest.KeyStore] with one compare-and-set
// UPDATE (... WHERE counter = $2). Concurrent callers queue on the row
// lock and each re-checks the condition on the row the previous one
// left, so of callers with the same old counter exactly one succeeds.
// The same statement tells a conflict (the key exists) from an unknown
// key.
func (s *AttestKeys) UpdateCounter(ctx context.Context, keyID []byte, oldCounter, newCounter uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var updated, exists bool
	err := s.db.QueryRow(ctx, `
WITH u AS (
	UPDATE attest_keys SET counter = $3 WHERE key_id = $1 AND counter = $2 RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM attest_keys WHERE key_id = $1)`,
		keyID, int64(oldCounter), int64(newCounter)).Scan(&updated, &exists)
	switch {
	case err != nil:
		return dbError("updating App Attest counter", err)
	case updated:
		return nil
	case exists:
		return attest.ErrCounterConflict
	}
	return attest.ErrNotFound
}

// DeleteKey implements [attest.KeyStore].
func (s *AttestKeys) DeleteKey(ctx context.Context, keyID []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM attest_keys WHERE key_id = $1`, keyID); err != nil {
		return dbError("deleting App Attest key", err)
	}
	return nil
}
