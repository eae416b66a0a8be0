package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/stepup"
)

// OTP is the PostgreSQL [stepup.OTPStore] (table otp_enrollments, one row
// per subject and kind).
type OTP struct {
	db *pgxpool.Pool
}

// Get implements [stepup.OTPStore].
func (s *OTP) Get(ctx context.Context, subject string, kind stepup.OTPKind) (stepup.OTPEnrollment, error) {
	if err := ctx.Err(); err != nil {
		return stepup.OTPEnrollment{}, err
	}
	e := stepup.OTPEnrollment{Subject: subject, Kind: kind}
	var alg string
	err := s.db.QueryRow(ctx, `
SELECT id, sealed_secret, algorithm, digits, period, counter, created_at
FROM otp_enrollments WHERE subject = $1 AND kind = $2`, subject, string(kind)).
		Scan(&e.ID, &e.SealedSecret, &alg, &e.Digits, &e.Period, &e.Counter, &e.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return stepup.OTPEnrollment{}, stepup.ErrNotFound
	}
	if err != nil {
		return stepup.OTPEnrollment{}, dbError("reading OTP enrollment", err)
	}
	e.Algorithm, e.CreatedAt = stepup.Algorithm(alg), e.CreatedAt.UTC()
	return e, nil
}

// Put implements [stepup.OTPStore]: one upsert replacing the whole row.
func (s *OTP) Put(ctx context.Context, e stepup.OTPEnrollment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `
INSERT INTO otp_enrollments (subject, kind, id, sealed_secret, algorithm, digits, period, counter, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (subject, kind) DO UPDATE SET
	id = EXCLUDED.id, sealed_secret = EXCLUDED.sealed_secret, algorithm = EXCLUDED.algorithm,
	digits = EXCLUDED.digits, period = EXCLUDED.period, counter = EXCLUDED.counter, created_at = EXCLUDED.created_at`,
		e.Subject, string(e.Kind), e.ID, e.SealedSecret, string(e.Algorithm), e.Digits, e.Period, e.Counter, e.CreatedAt)
	if err != nil {
		return dbError("storing OTP enrollment", err)
	}
	return nil
}

// Advance implements [stepup.OTPStore] with one conditional UPDATE
// (... WHERE id = $3 AND counter < $4). Concurrent callers queue on the
// row lock and each re-checks the condition on the row the previous one
// left, so of callers passing the same counter exactly one succeeds. The
// same statement tells a replay (the enrollment exists) from a missing
// enrollment.
func (s *OTP) Advance(ctx context.Context, subject string, kind stepup.OTPKind, id string, counter int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var advanced, exists bool
	err := s.db.QueryRow(ctx, `
WITH u AS (
	UPDATE otp_enrollments SET counter = $4
	WHERE subject = $1 AND kind = $2 AND id = $3 AND counter < $4
	RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM u),
       EXISTS (SELECT 1 FROM otp_enrollments WHERE subject = $1 AND kind = $2 AND id = $3)`,
		subject, string(kind), id, counter).Scan(&advanced, &exists)
	switch {
	case err != nil:
		return dbError("advancing OTP counter", err)
	case advanced:
		return nil
	case exists:
		return stepup.ErrReplay
	}
	return stepup.ErrNotFound
}

// Delete implements [stepup.OTPStore].
func (s *OTP) Delete(ctx context.Context, subject string, kind stepup.OTPKind) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM otp_enrollments WHERE subject = $1 AND kind = $2`, subject, string(kind)); err != nil {
		return dbError("deleting OTP enrollment", err)
	}
	return nil
}

// PINs is the PostgreSQL [stepup.PINStore] (table pins, one row per
// device).
type PINs struct {
	db *pgxpool.Pool
}

// Get implements [stepup.PINStore].
func (s *PINs) Get(ctx context.Context, deviceID string) (stepup.PINRecord, error) {
	if err := ctx.Err(); err != nil {
		return stepup.PINRecord{}, err
	}
	r := stepup.PINRecord{DeviceID: deviceID}
	err := s.db.QueryRow(ctx, `SELECT subject, hash, created_at FROM pins WHERE device_id = $1`, deviceID).Scan(&r.Subject, &r.Hash, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return stepup.PINRecord{}, stepup.ErrNotFound
	}
	if err != nil {
		return stepup.PINRecord{}, dbError("reading PIN", err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// Put implements [stepup.PINStore].
func (s *PINs) Put(ctx context.Context, r stepup.PINRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `
INSERT INTO pins (device_id, subject, hash, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (device_id) DO UPDATE SET subject = EXCLUDED.subject, hash = EXCLUDED.hash, created_at = EXCLUDED.created_at`,
		r.DeviceID, r.Subject, r.Hash, r.CreatedAt)
	if err != nil {
		return dbError("storing PIN", err)
	}
	return nil
}

// Delete implements [stepup.PINStore].
func (s *PINs) Delete(ctx context.Context, deviceID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM pins WHERE device_id = $1`, deviceID); err != nil {
		return dbError("deleting PIN", err)
	}
	return nil
}

// Recovery is the PostgreSQL [stepup.RecoveryStore] (table
// recovery_codes: one row per subject holding the array of its remaining
// digests).
type Recovery struct {
	db *pgxpool.Pool
}

// Replace implements [stepup.RecoveryStore] with one upsert (or one
// DELETE for an empty set).
func (s *Recovery) Replace(ctx context.Context, subject string, digests [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if len(digests) == 0 {
		_, err = s.db.Exec(ctx, `DELETE FROM recovery_codes WHERE subject = $1`, subject)
	} else {
		set := make([][]byte, len(digests))
		for i, d := range digests {
			set[i] = append([]byte{}, d...) // never NULL, even for a nil digest
		}
		_, err = s.db.Exec(ctx, `
INSERT INTO recovery_codes (subject, digests) VALUES ($1, $2)
ON CONFLICT (subject) DO UPDATE SET digests = EXCLUDED.digests`, subject, set)
	}
	if err != nil {
		return dbError("storing recovery codes", err)
	}
	return nil
}

// Use implements [stepup.RecoveryStore] with one conditional UPDATE that
// cuts the first occurrence of digest out of the array. Concurrent
// callers queue on the row lock and each re-checks "digest is in the
// array" on the row the previous one left: exactly one succeeds.
func (s *Recovery) Use(ctx context.Context, subject string, digest []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if digest == nil {
		digest = []byte{}
	}
	tag, err := s.db.Exec(ctx, `
UPDATE recovery_codes
SET digests = digests[:array_position(digests, $2::bytea) - 1] || digests[array_position(digests, $2::bytea) + 1:]
WHERE subject = $1 AND array_position(digests, $2::bytea) IS NOT NULL`, subject, digest)
	if err != nil {
		return dbError("using a recovery code", err)
	}
	if tag.RowsAffected() == 0 {
		return stepup.ErrNotFound
	}
	return nil
}

// Count implements [stepup.RecoveryStore].
func (s *Recovery) Count(ctx context.Context, subject string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.db.QueryRow(ctx, `SELECT coalesce((SELECT cardinality(digests) FROM recovery_codes WHERE subject = $1), 0)`, subject).Scan(&n)
	if err != nil {
		return 0, dbError("counting recovery codes", err)
	}
	return n, nil
}

// DeviceKeys is the PostgreSQL [stepup.DeviceKeyStore] (table
// device_keys, one row per client; the public key as PKIX DER).
type DeviceKeys struct {
	db *pgxpool.Pool
}

// Get implements [stepup.DeviceKeyStore].
func (s *DeviceKeys) Get(ctx context.Context, clientID string) (stepup.DeviceKey, error) {
	if err := ctx.Err(); err != nil {
		return stepup.DeviceKey{}, err
	}
	k := stepup.DeviceKey{ClientID: clientID}
	var der []byte
	err := s.db.QueryRow(ctx, `SELECT subject, public_key, biometry, created_at FROM device_keys WHERE client_id = $1`, clientID).
		Scan(&k.Subject, &der, &k.Biometry, &k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return stepup.DeviceKey{}, stepup.ErrNotFound
	}
	if err != nil {
		return stepup.DeviceKey{}, dbError("reading device key", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if der != nil {
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return stepup.DeviceKey{}, errors.New("moat/postgres: stored device key does not parse")
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return stepup.DeviceKey{}, errors.New("moat/postgres: stored device key is not ECDSA")
		}
		k.PublicKey = ec
	}
	return k, nil
}

// Put implements [stepup.DeviceKeyStore].
func (s *DeviceKeys) Put(ctx context.Context, k stepup.DeviceKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var der []byte
	if k.PublicKey != nil {
		b, err := x509.MarshalPKIXPublicKey(k.PublicKey)
		if err != nil {
			return fmt.Errorf("%w: %w", stepup.ErrInvalidKey, err)
		}
		der = b
	}
	_, err := s.db.Exec(ctx, `
INSERT INTO device_keys (client_id, subject, public_key, biometry, created_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (client_id) DO UPDATE SET
	subject = EXCLUDED.subject, public_key = EXCLUDED.public_key, biometry = EXCLUDED.biometry, created_at = EXCLUDED.created_at`,
		k.ClientID, k.Subject, der, k.Biometry, k.CreatedAt)
	if err != nil {
		return dbError("storing device key", err)
	}
	return nil
}

// Delete implements [stepup.DeviceKeyStore].
func (s *DeviceKeys) Delete(ctx context.Context, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM device_keys WHERE client_id = $1`, clientID); err != nil {
		return dbError("deleting device key", err)
	}
	return nil
}
