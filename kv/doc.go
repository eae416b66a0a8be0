// Package kv is the small interface moat uses for shared, expiring,
// high-churn state: auth sessions, challenge and check state, nonces, DPoP
// and one-time-code replay caches, attempt counters and revoked token ids.
//
// Every value in a [Store] expires: a TTL of zero or less is refused with
// [ErrInvalidTTL], so nothing forgotten by a bug lives forever. Durable
// records (registered clients, devices, keys) do not belong here; each
// capability package has its own small store interface for them.
//
// The in-memory implementation, [NewMemory], is the default and suits a
// single server instance and tests. Several instances share state through
// the Redis implementation in the separate module
// github.com/moatsec/moat/stores/redis (and, for users without Redis, an
// unlogged-table implementation in github.com/moatsec/moat/stores/postgres).
//
// # Atomicity
//
// The operations that matter for security are atomic in every
// implementation, and the conformance suite in package kvtest holds every
// implementation to that:
//
//   - [Store.Consume] reads and deletes a key in one step: of any number of
//     concurrent callers, exactly one gets the value. Single-use codes,
//     nonces and authorization codes are consumed this way.
//   - [Store.CompareAndSet] writes only if the key is still at the version
//     the caller read (or, with version 0, only if the key is absent): of
//     concurrent writers starting from one version, exactly one succeeds.
//   - [Store.Increment] adds to a counter atomically; concurrent increments
//     are never lost. Attempt counters and rate limits use it.
//
// Versions are unique for the life of a store: a key that is deleted and
// created again never gets a version it had before, so a compare-and-set
// cannot succeed against a value that was replaced in between.
//
// # Errors
//
// A miss is [ErrNotFound]; a lost compare-and-set is [ErrConflict]. Any other
// error (a closed connection, a cancelled context) means the operation's
// outcome is unknown, and callers in moat refuse the request that needed it.
package kv
