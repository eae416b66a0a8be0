// Package postgres is the PostgreSQL backend of moat: real tables and
// migrations for every durable store of the core module, and an
// unlogged-table [kv.Store] for deployments without Redis. It is a
// separate Go module (github.com/moatsec/moat/stores/postgres) so that
// the core keeps its small dependency set; it uses pgx v5 and its pool.
//
// # The main path
//
//	pool, err := pgxpool.New(ctx, databaseURL)
//	...
//	if err := postgres.Migrate(ctx, pool); err != nil { ... }
//	stores, err := postgres.New(ctx, pool, postgres.Config{})
//	...
//	authCfg := auth.Config{Store: stores.KV(), Clients: stores.Clients(), ...}
//	deviceCfg := device.Config{Store: stores.Devices(), ...}
//
// [New] gives access to each store; all share the caller's pool:
//
//	stores.Clients()     auth.ClientStore        table clients
//	stores.Devices()     device.Store            devices, device_apps, device_audit, version_policies
//	stores.OTP()         stepup.OTPStore         otp_enrollments
//	stores.PINs()        stepup.PINStore         pins
//	stores.Recovery()    stepup.RecoveryStore    recovery_codes
//	stores.DeviceKeys()  stepup.DeviceKeyStore   device_keys
//	stores.AttestKeys()  attest.KeyStore         attest_keys
//	stores.Updates()     update.Store            update_channels, update_uploads, update_chunks,
//	                                             update_releases, update_bundles
//	stores.KV()          kv.Store                kv_entries (UNLOGGED), sequence kv_version_seq
//
// Each store passes the core's conformance suite for its interface
// (authtest, devicetest, stepuptest, attesttest, updatetest, kvtest)
// unchanged.
//
// # Migrations
//
// The schema is a set of versioned SQL files embedded in the binary
// (migrations/NNNN_name.sql). [Migrate] applies the missing ones in one
// transaction that holds a PostgreSQL advisory lock
// (pg_advisory_xact_lock), and records each in the table
// schema_migrations: instances that start at once apply each migration
// exactly once, and running Migrate on an up-to-date schema is a no-op.
// Nothing is migrated implicitly: call Migrate at deployment or at
// startup, before New, with a role allowed to create tables. Tables are
// created in the first schema of the pool's search_path (normally
// "public"); set search_path in the connection string (options=-c
// search_path=moat) to keep moat's tables in a schema of their own.
//
// [New] calls [CheckSchema], which refuses a database migrated by newer
// code with [ErrSchemaTooNew] (the old binary does not know what the new
// tables mean) and an unmigrated or older one with [ErrSchemaOutdated].
// Migrate refuses a newer database too, changing nothing. So deploy new
// code by migrating first; old instances that are already running keep
// working only as far as the new migration stays compatible with them.
//
// # Atomicity
//
// Every promise the core interfaces make holds across any number of
// server instances, because each is kept by PostgreSQL, in one statement
// or one transaction (READ COMMITTED):
//
//   - Creating a client or an App Attest key is INSERT ... ON CONFLICT DO
//     NOTHING: of concurrent creators exactly one inserts, the others get
//     auth.ErrClientExists or attest.ErrKeyExists.
//   - OTP Advance, App Attest UpdateCounter and recovery-code Use are one
//     conditional UPDATE each (counter < $new; counter = $old; the digest
//     is in the subject's array). Concurrent callers queue on the row lock
//     and PostgreSQL re-checks the condition on the row the previous
//     caller left, so exactly one succeeds; the others see a replay, a
//     conflict or a miss.
//   - Device changes run in one transaction that first locks the device's
//     row (the upsert of Seen, SELECT ... FOR UPDATE for status changes and
//     unregistration): concurrent sightings lose no user and no app, each
//     audit entry's From is the status the previous change set, and a
//     change commits with its audit entry or not at all. Policy changes
//     commit with their audit entries.
//   - An update release is staged as chunks of at most [BundleChunkSize]
//     bytes, invisible to readers, and committed in one transaction that
//     first moves the channel's latest version forward with a conditional
//     upsert: of concurrent commits of one version exactly one succeeds,
//     and a version not greater than every committed one is refused with
//     update.ErrConflict. Bundles are read back chunk by chunk, never
//     whole.
//   - kv: Consume is DELETE ... RETURNING, CompareAndSet a conditional
//     UPDATE (or an upsert that only replaces an expired row), Increment
//     INSERT ... ON CONFLICT DO UPDATE keeping a live counter's expiry.
//     Expired rows count as absent everywhere. Versions come from a
//     sequence: never 0, never reused.
//
// Ids the core sorts (device ids, app ids, policy keys) are stored
// COLLATE "C", so the order is Go's byte order whatever the database's
// locale. Times are stored with microsecond precision and returned in
// UTC.
//
// # When PostgreSQL is down
//
// Every method then returns an error prefixed "moat/postgres:" that wraps
// the driver's error, and never a sentinel of the core (no ErrNotFound,
// no conflict): moat's handlers treat it as a store failure and refuse the
// request with 503, failing closed. Errors name the operation, never the
// keys, ids or values involved (a kv key can be a nonce, a record can
// hold a hash). Bound how long a call may wait through its context and
// connect_timeout in the connection string.
//
// # The kv table
//
// kv_entries is UNLOGGED: its writes skip the write-ahead log, which
// makes high-churn state cheap, but PostgreSQL empties the table after a
// crash (not after a clean shutdown) and does not copy it to replicas, so
// a failover starts it empty too. For expiring state that is acceptable:
// users sign in again, challenges restart, attempt counters start over.
// It also means replay caches reset: a DPoP proof or one-time code seen
// shortly before the crash could be accepted once more within its own
// short validity window. Deployments that cannot accept that use Redis
// with persistence (github.com/moatsec/moat/stores/redis). Expired rows
// are invisible but stay until overwritten: call [KV.DeleteExpired]
// periodically. Expiry follows the PostgreSQL server's clock (shared by
// every instance) unless Config.KVNow injects another.
package postgres
