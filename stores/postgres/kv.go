package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/kv"
)

// KV is the PostgreSQL [kv.Store], for deployments without Redis. Entries
// live in the UNLOGGED table kv_entries (key and value as bytea, the
// version, the expiry). Unlogged tables skip the write-ahead log: writes
// are cheaper, but PostgreSQL empties the table after a crash (not after
// a clean restart) and does not replicate it. That is acceptable for
// expiring state (sessions, challenges, attempt counters start over) but
// it means replay caches and single-use nonces reset: a nonce issued
// before the crash is gone rather than replayable, and a DPoP proof or
// OTP seen before the crash could be accepted once more within its own
// validity window.
//
// Every promise of [kv.Store] is one SQL statement:
//   - Get and Consume see only unexpired rows; Consume is DELETE ...
//     RETURNING, so of concurrent consumers exactly one gets the row.
//   - Set is an upsert; CompareAndSet is a conditional UPDATE (version
//     matches, not expired) or, for version 0, an upsert whose update
//     happens only over an expired row. Concurrent callers queue on the
//     row lock and re-check the condition: exactly one wins.
//   - Increment is INSERT ... ON CONFLICT DO UPDATE: a live counter keeps
//     its expiry, an expired one starts over.
//   - Versions come from the sequence kv_version_seq: never 0, never
//     reused (the sequence is logged, so this holds across a crash too).
//
// Expired rows are invisible but stay until overwritten or removed by
// [KV.DeleteExpired]: call it periodically (every minute or so).
//
// Expiry is judged by the PostgreSQL server's clock unless Config.KVNow
// is set. Times have microsecond precision; TTLs are rounded up to it.
type KV struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// nowArg is the clock parameter of every statement: NULL means the
// server's now().
func (s *KV) nowArg() any {
	if s.now == nil {
		return nil
	}
	return s.now()
}

func checkKey(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !kv.ValidKey(key) {
		return kv.ErrInvalidKey
	}
	return nil
}

// ttlArg rounds ttl up to PostgreSQL's microseconds.
func ttlArg(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, kv.ErrInvalidTTL
	}
	if r := ttl % time.Microsecond; r != 0 {
		ttl += time.Microsecond - r
	}
	return ttl, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Get implements [kv.Store].
func (s *KV) Get(ctx context.Context, key string) (kv.Item, error) {
	if err := checkKey(ctx, key); err != nil {
		return kv.Item{}, err
	}
	var it kv.Item
	var version int64
	err := s.db.QueryRow(ctx, `
SELECT value, version, expires_at FROM kv_entries
WHERE key = $1 AND expires_at > coalesce($2::timestamptz, now())`, []byte(key), s.nowArg()).
		Scan(&it.Value, &version, &it.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return kv.Item{}, kv.ErrNotFound
	}
	if err != nil {
		return kv.Item{}, dbError("kv get", err)
	}
	it.Value, it.Version, it.ExpiresAt = nonNil(it.Value), uint64(version), it.ExpiresAt.UTC()
	return it, nil
}

// Set implements [kv.Store].
func (s *KV) Set(ctx context.Context, key string, val []byte, ttl time.Duration) (uint64, error) {
	if err := checkKey(ctx, key); err != nil {
		return 0, err
	}
	ttl, err := ttlArg(ttl)
	if err != nil {
		return 0, err
	}
	var version int64
	err = s.db.QueryRow(ctx, `
INSERT INTO kv_entries AS k (key, value, version, expires_at)
VALUES ($1, $2, nextval('kv_version_seq'), coalesce($4::timestamptz, now()) + $3::interval)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
RETURNING version`, []byte(key), nonNil(val), ttl, s.nowArg()).Scan(&version)
	if err != nil {
		return 0, dbError("kv set", err)
	}
	return uint64(version), nil
}

// CompareAndSet implements [kv.Store].
func (s *KV) CompareAndSet(ctx context.Context, key string, val []byte, ttl time.Duration, version uint64) (uint64, error) {
	if err := checkKey(ctx, key); err != nil {
		return 0, err
	}
	ttl, err := ttlArg(ttl)
	if err != nil {
		return 0, err
	}
	if version > 1<<63-1 {
		return 0, kv.ErrConflict // no version this store hands out
	}
	var q string
	args := []any{[]byte(key), nonNil(val), ttl, s.nowArg()}
	if version == 0 {
		// Create, or take over an expired row; a live row conflicts.
		q = `
INSERT INTO kv_entries AS k (key, value, version, expires_at)
VALUES ($1, $2, nextval('kv_version_seq'), coalesce($4::timestamptz, now()) + $3::interval)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
WHERE k.expires_at <= coalesce($4::timestamptz, now())
RETURNING version`
	} else {
		q = `
UPDATE kv_entries SET value = $2, version = nextval('kv_version_seq'), expires_at = coalesce($4::timestamptz, now()) + $3::interval
WHERE key = $1 AND version = $5 AND expires_at > coalesce($4::timestamptz, now())
RETURNING version`
		args = append(args, int64(version))
	}
	var newVersion int64
	err = s.db.QueryRow(ctx, q, args...).Scan(&newVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, kv.ErrConflict
	}
	if err != nil {
		return 0, dbError("kv compare-and-set", err)
	}
	return uint64(newVersion), nil
}

// Delete implements [kv.Store].
func (s *KV) Delete(ctx context.Context, key string) error {
	if err := checkKey(ctx, key); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM kv_entries WHERE key = $1`, []byte(key)); err != nil {
		return dbError("kv delete", err)
	}
	return nil
}

// Consume implements [kv.Store] with DELETE ... RETURNING.
func (s *KV) Consume(ctx context.Context, key string) (kv.Item, error) {
	if err := checkKey(ctx, key); err != nil {
		return kv.Item{}, err
	}
	var it kv.Item
	var version int64
	err := s.db.QueryRow(ctx, `
DELETE FROM kv_entries WHERE key = $1 AND expires_at > coalesce($2::timestamptz, now())
RETURNING value, version, expires_at`, []byte(key), s.nowArg()).Scan(&it.Value, &version, &it.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return kv.Item{}, kv.ErrNotFound
	}
	if err != nil {
		return kv.Item{}, dbError("kv consume", err)
	}
	it.Value, it.Version, it.ExpiresAt = nonNil(it.Value), uint64(version), it.ExpiresAt.UTC()
	return it, nil
}

// incrementTries bounds how often Increment retries when the row changed
// between its upsert and its diagnosis of a refusal.
const incrementTries = 5

// Increment implements [kv.Store] with one INSERT ... ON CONFLICT DO
// UPDATE. A live counter is updated in place and keeps its expiry; an
// expired row is replaced by a new counter with expiry ttl. The update
// happens only when the stored value is a decimal integer and the sum
// fits in int64; when it does not, a read of the row tells
// [kv.ErrNotCounter] from [kv.ErrOverflow].
func (s *KV) Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(ctx, key); err != nil {
		return 0, err
	}
	ttl, err := ttlArg(ttl)
	if err != nil {
		return 0, err
	}
	for range incrementTries {
		now := s.nowArg()
		var b []byte
		err := s.db.QueryRow(ctx, `
INSERT INTO kv_entries AS k (key, value, version, expires_at)
VALUES ($1, convert_to($2::bigint::text, 'UTF8'), nextval('kv_version_seq'), coalesce($4::timestamptz, now()) + $3::interval)
ON CONFLICT (key) DO UPDATE SET
	value      = CASE WHEN k.expires_at <= coalesce($4::timestamptz, now()) THEN EXCLUDED.value
	                  ELSE convert_to((kv_counter(k.value) + $2::bigint)::text, 'UTF8') END,
	version    = EXCLUDED.version,
	expires_at = CASE WHEN k.expires_at <= coalesce($4::timestamptz, now()) THEN EXCLUDED.expires_at
	                  ELSE k.expires_at END
WHERE k.expires_at <= coalesce($4::timestamptz, now())
   OR (kv_counter(k.value) BETWEEN -9223372036854775808 AND 9223372036854775807
       AND kv_counter(k.value) + $2::bigint BETWEEN -9223372036854775808 AND 9223372036854775807)
RETURNING value`, []byte(key), delta, ttl, now).Scan(&b)
		if err == nil {
			n, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return 0, errors.New("moat/postgres: kv increment: stored counter does not parse")
			}
			return n, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, dbError("kv increment", err)
		}
		// Refused: find out why. A row that changed or went away in
		// between is tried again.
		var cur *string
		err = s.db.QueryRow(ctx, `
SELECT kv_counter(value)::text FROM kv_entries
WHERE key = $1 AND expires_at > coalesce($2::timestamptz, now())`, []byte(key), now).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, dbError("kv increment", err)
		}
		if cur == nil {
			return 0, kv.ErrNotCounter
		}
		n, err := strconv.ParseInt(*cur, 10, 64)
		if err != nil {
			return 0, kv.ErrNotCounter
		}
		if (delta > 0 && n > 1<<63-1-delta) || (delta < 0 && n < -1<<63-delta) {
			return 0, kv.ErrOverflow
		}
	}
	return 0, fmt.Errorf("moat/postgres: kv increment: the counter kept changing; gave up after %d tries", incrementTries)
}

// DeleteExpired removes the expired entries and returns how many it
// removed. Expired entries are already invisible; this only reclaims
// their space. Call it periodically from one instance (several are
// harmless).
func (s *KV) DeleteExpired(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM kv_entries WHERE expires_at <= coalesce($1::timestamptz, now())`, s.nowArg())
	if err != nil {
		return 0, dbError("kv delete expired", err)
	}
	return tag.RowsAffected(), nil
}
