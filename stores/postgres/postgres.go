package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/update"
)

var (
	_ auth.ClientStore      = (*Clients)(nil)
	_ device.Store          = (*Devices)(nil)
	_ device.Registry       = (*Devices)(nil)
	_ device.StatusLog      = (*Devices)(nil)
	_ device.PolicyStore    = (*Devices)(nil)
	_ stepup.OTPStore       = (*OTP)(nil)
	_ stepup.PINStore       = (*PINs)(nil)
	_ stepup.RecoveryStore  = (*Recovery)(nil)
	_ stepup.DeviceKeyStore = (*DeviceKeys)(nil)
	_ attest.KeyStore       = (*AttestKeys)(nil)
	_ update.Store          = (*Updates)(nil)
	_ kv.Store              = (*KV)(nil)
)

// Config configures [New]. The zero value is the one to use in
// production.
type Config struct {
	// KVNow is the clock the kv store judges expiry by. Nil (the default)
	// uses the PostgreSQL server's clock (now()), which every server
	// instance shares, so instances with skewed clocks still agree on
	// what has expired. Tests set a fake clock here to expire keys
	// without sleeping.
	KVNow func() time.Time
}

// Stores gives access to every store, all sharing one pool. Build it with
// [New]; it is safe for concurrent use.
type Stores struct {
	clients    *Clients
	devices    *Devices
	otp        *OTP
	pins       *PINs
	recovery   *Recovery
	deviceKeys *DeviceKeys
	attestKeys *AttestKeys
	updates    *Updates
	kv         *KV
}

// New returns the stores on pool after checking, with [CheckSchema], that
// the schema in the pool's search_path is the version this code needs: it
// fails with [ErrSchemaOutdated] before [Migrate] has run, with
// [ErrSchemaTooNew] when newer code migrated the database, and with a
// database error when PostgreSQL does not answer. The pool stays the
// caller's: close it after the last use of the stores.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Stores, error) {
	if pool == nil {
		return nil, errors.New("moat/postgres: New needs a pool")
	}
	if err := CheckSchema(ctx, pool); err != nil {
		return nil, err
	}
	return newStores(pool, cfg), nil
}

// newStores builds the stores without looking at the database.
func newStores(pool *pgxpool.Pool, cfg Config) *Stores {
	return &Stores{
		clients:    &Clients{db: pool},
		devices:    &Devices{db: pool},
		otp:        &OTP{db: pool},
		pins:       &PINs{db: pool},
		recovery:   &Recovery{db: pool},
		deviceKeys: &DeviceKeys{db: pool},
		attestKeys: &AttestKeys{db: pool},
		updates:    &Updates{db: pool, chunkSize: BundleChunkSize},
		kv:         &KV{db: pool, now: cfg.KVNow},
	}
}

// Clients returns the [auth.ClientStore] (table clients).
func (s *Stores) Clients() *Clients { return s.clients }

// Devices returns the [device.Store]: registry, status log with its audit
// trail, and version policies (tables devices, device_apps, device_audit,
// version_policies).
func (s *Stores) Devices() *Devices { return s.devices }

// OTP returns the [stepup.OTPStore] (table otp_enrollments).
func (s *Stores) OTP() *OTP { return s.otp }

// PINs returns the [stepup.PINStore] (table pins).
func (s *Stores) PINs() *PINs { return s.pins }

// Recovery returns the [stepup.RecoveryStore] (table recovery_codes).
func (s *Stores) Recovery() *Recovery { return s.recovery }

// DeviceKeys returns the [stepup.DeviceKeyStore] (table device_keys).
func (s *Stores) DeviceKeys() *DeviceKeys { return s.deviceKeys }

// AttestKeys returns the [attest.KeyStore] (table attest_keys).
func (s *Stores) AttestKeys() *AttestKeys { return s.attestKeys }

// Updates returns the [update.Store] (tables update_channels,
// update_uploads, update_chunks, update_releases, update_bundles).
func (s *Stores) Updates() *Updates { return s.updates }

// KV returns the [kv.Store] (unlogged table kv_entries).
func (s *Stores) KV() *KV { return s.kv }
