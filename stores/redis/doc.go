// Package redis is moat's Redis backend: a [kv.Store] that several server
// instances share, and a [device.Invalidator] that carries device and
// version-policy changes from the instance that made them to all the
// others at once. It lives in its own module
// (github.com/moatsec/moat/stores/redis) so that the core module does not
// depend on go-redis.
//
// # Use
//
// Build a go-redis client as usual (a *redis.Client, a failover client for
// Sentinel, a *redis.ClusterClient or a *redis.Ring) and hand it to [New]
// and [NewInvalidator], with a prefix of your own:
//
//	client := goredis.NewClient(&goredis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := moatredis.New(client, moatredis.Config{Prefix: "myapp:moat:"})
//	inv, err := moatredis.NewInvalidator(ctx, client, moatredis.InvalidatorConfig{Prefix: "myapp:moat:"})
//	defer inv.Close()
//
// then give store wherever moat asks for a kv.Store (auth, step-up,
// attest, device) and inv to device.Config.Invalidator. The package does not
// close the client: close it after the Store and the Invalidator. Set
// ContextTimeoutEnabled so that request deadlines bound Redis calls.
//
// # Key layout
//
// Every key starts with Config.Prefix ("moat:" when empty): give each
// application sharing a Redis database its own prefix, and every instance
// of one application the same. A kv key k is stored as one hash,
//
//	<prefix>{<bucket>}:k:<k>     fields v (the value) and ver (its version), expiring by PEXPIRE
//	<prefix>{<bucket>}:version   the bucket's version counter (a plain integer, no expiry)
//
// where bucket is the CRC-32 (IEEE) of k modulo 16384. The braces are a
// Redis Cluster hash tag: an entry and its counter always share one slot,
// so every script below runs on one node, while the buckets spread the
// keys over the cluster. At most 16384 counter keys exist per prefix; they
// never expire and must not be deleted. (A prefix that holds a hash tag
// of its own, such as "{myapp}:", keeps everything correct but puts every
// key in one slot.) Invalidations travel on the pub/sub channel
// <prefix>device:invalidations (see [ChannelSuffix]).
//
// # Versions
//
// A version comes from the INCR of the entry's bucket counter, inside the
// script that writes the entry. The counter outlives every entry of its
// bucket, so a key that is deleted or expires and is written again gets a
// version it never had, and a compare-and-set holding a version from
// before cannot match; nothing per key is left behind after a delete. The
// counters are per bucket, not per store: two keys may have the same
// version, which [kv.Store] allows. Should a counter be lost anyway (a
// FLUSHDB, an eviction, an operator), the write scripts never give a live
// entry a version at or below the one it has.
//
// # Atomicity
//
// Every promise of [kv.Store] is kept on the server, by a Lua script (run
// with EVALSHA, falling back to EVAL) that Redis executes as one
// indivisible step:
//
//   - Get reads value, version and PTTL together, so a value never comes
//     with another write's version or expiry.
//   - Set draws a version and writes value, version and expiry together.
//   - CompareAndSet compares the stored version (or, for version 0, the
//     key's absence) and writes in the same step: of concurrent callers
//     with one expected version, exactly one succeeds.
//   - Consume reads and deletes in the same step: of concurrent callers,
//     exactly one gets the item.
//   - Increment checks the value is a 64-bit decimal counter, adds with
//     HINCRBY (64-bit arithmetic, overflow refused with [kv.ErrOverflow]),
//     and sets the expiry only when it created the key, so a counter
//     measures a fixed window from its first increment. A refused
//     increment changes nothing.
//   - Delete is a plain DEL.
//
// Expiry is Redis's own, by its clock: an expired key is gone for every
// command, including inside the scripts. Item.ExpiresAt is the local time
// of the call plus the PTTL Redis reported, never later than the true
// expiry. TTLs are rounded up to whole milliseconds.
//
// # Invalidations
//
// An [Invalidator] holds one subscription, confirmed by Redis before
// [NewInvalidator] returns, so nothing published after that is missed. It
// fans each message out to the functions given to [Invalidator.Subscribe].
// [Invalidator.Publish] calls the local subscribers before it returns, then
// PUBLISHes the invalidation as JSON (device.Invalidation's fields plus an
// origin tag by which the publisher skips its own echo). Redis pub/sub keeps
// nothing for a subscriber that is away, so whenever the subscription is
// made again, after a connection error (go-redis reconnects by itself) or
// after a connection that stopped answering its ping
// ([InvalidatorConfig.PingInterval]), subscribers receive
// Invalidation{All: true} and drop their whole cache. A message that does
// not decode is treated the same way. An operator can invalidate every
// instance by hand:
//
//	redis-cli PUBLISH moat:device:invalidations '{"all":true}'
//
// # When Redis is down
//
// Every method then returns an error (wrapping go-redis's, prefixed
// "moat/redis:", never carrying a key or a value); no failure is ever
// reported as [kv.ErrNotFound] or [kv.ErrConflict], nor as success. moat's
// packages answer such errors with 503: the store fails closed. An entry
// under the prefix that this package did not write gives [ErrMalformed],
// also an error rather than a miss. go-redis retries a command after a
// network error (Options.MaxRetries), so an operation whose reply was lost
// may have been applied before it was retried: an Increment may count
// twice, a Consume may report ErrNotFound for the item it removed, a
// CompareAndSet may report ErrConflict for its own write. Each errs toward
// refusing; set MaxRetries to -1 to turn retries off. Publish with Redis
// down still reaches local subscribers and returns an error (the device
// package reports it as device.ErrNotPropagated); other instances catch up
// through the Invalidation{All: true} of their reconnection or, at worst,
// their cache TTL.
//
// # Persistence and eviction
//
// Configure the Redis that holds moat's state with
//
//	maxmemory-policy noeviction
//
// Under any evicting policy Redis may drop keys before they expire: an
// evicted replay-cache or nonce entry re-opens the replay it was guarding
// against, an evicted attempt counter resets a lockout, an evicted version
// counter weakens versions. With noeviction a full Redis refuses writes,
// which moat turns into 503s. Likewise, a restart without persistence (or
// a failover to a replica that lagged) forgets recent state, replay caches
// included: use AOF (appendonly yes) where that matters, and size memory
// for the state's TTLs.
package redis
