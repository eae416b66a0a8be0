// Package device controls which devices and which app versions may use a
// moat-protected API: a registry of devices with an operator-set status
// (active, lost, stolen, disabled, or disabled for one app), app-version
// policies (block or notify below a minimum, block listed versions, with a
// translated message and a download link), an operator API with an audit
// trail, and enforcement at registration, at token refresh and on every
// protected request.
//
// # The main path
//
// Build one [Control] from a [Store] ([NewMemory], or the PostgreSQL store
// in github.com/moatsec/moat/stores/postgres) and a [kv.Store] that
// remembers which clients saw a notice:
//
//	ctl, err := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kvStore})
//
// Then enforce at the three places a client shows up:
//
//   - at registration, [Control.Register] records the device and app and
//     refuses a blocked device or version;
//   - at token refresh, [Control.Allow] decides without showing notices;
//   - on every protected request, [Control.Middleware] (or its twin
//     [Control.Check]) refuses with 403 and a JSON body
//     {"error": "device_blocked" | "app_version_blocked",
//     "error_description", "message", "download_url"}, answers 503 when the
//     store fails, and otherwise lets the call through, adding the
//     [NoticeHeader] response header once per client when the version is
//     below a notify-only minimum.
//
// Refusals are *[Refusal] errors carrying the HTTP status, the code, the
// operator's message in the language the request's Accept-Language chose,
// and the download URL; any other error from these methods is a store
// failure, on which callers must refuse (503). Hooks: [Config.Observe]
// receives every refusal and every notice shown, for analytics.
//
// Operators change statuses and policies through [Control.SetStatus],
// [Control.Unregister], [Control.SetPolicy] and [Control.DeletePolicy], or
// over HTTP through [NewOperatorHandler], which requires an [Authorizer]
// from the host (moat has no built-in admin accounts; [NewTokenAuthorizer]
// covers scripts and small deployments). The moat CLI's "device" command
// talks to that API. Every change records who, when and why in an audit
// trail ([Control.Audit]). Status changes are reversible; unregistering a
// device is not: the registry forgets it, and its clients are refused
// until the app registers again (a blocked device cannot be unregistered,
// so unregistering never lifts a block).
//
// # Versions
//
// Versions compare as semantic versions (semver 2.0.0 precedence), with
// two parts meaning a patch of zero ("1.10" is "1.10.0"); a "v" prefix,
// wildcards, four parts or any other deviation is malformed, and a
// malformed or empty version is below every minimum. For a minimum of
// 1.10.0: 1.9.1 is refused, 1.10.0 and 1.10 pass, 1.x, "" and v1.10.0 are
// refused (malformed), and 1.10.0-beta.1 is refused (a pre-release is
// below its release). See [Version]. When an attestation verdict carries a
// trustworthy version code (Play Integrity's versionCode) and the policy
// sets version-code rules, the code decides instead of the claimed
// version ([Client.AttestedVersionCode], [Policy]).
//
// # Blocks that take effect at once
//
// Status and policy reads go through a short cache (2 s by default,
// [Config.CacheTTL]). A change made through a Control invalidates that
// Control's cache before the call returns, so a device marked stolen is
// refused on its very next request in that process, and never reaches it
// again through a fill that raced with the change (fills that overlap an
// invalidation are dropped). Other instances learn of the change through
// the [Invalidator]: [LocalInvalidator] delivers within one process; the
// Redis backend (redis.NewInvalidator in github.com/moatsec/moat/stores/redis)
// publishes each [Invalidation] on a channel every instance subscribes to,
// and delivers Invalidation{All: true} after reconnecting, since messages
// may have been lost meanwhile. Measured on three instances in one process
// sharing Redis and PostgreSQL (examples/travel/instances,
// TestStolenOnEveryInstance, 100 trials on a 2-core machine): from the
// operator's change to the other instances' refusal, p50 about 3.5 ms and
// p99 7-11 ms, the very next request refused in every trial. Without a
// shared Invalidator, instances sharing a PostgreSQL store see each
// other's changes within 1.25 × CacheTTL. Because every protected request
// is checked, a block does not wait for access tokens to expire.
//
// # Security properties and limits
//
//   - Fails closed: a store or KV error, or a stored policy that does not
//     validate, refuses the request (503); a device unknown to the
//     registry and a request without a device id are refused (403).
//   - The claimed app version (and platform) is what the client said at
//     registration; only an attested version code is trustworthy. A
//     version policy stops honest old apps and raises the bar; it is not
//     proof against a modified client.
//   - A device the registry does not know is refused with device_blocked
//     ("register again"). When adding device control to a running
//     deployment, record the existing clients with [Control.Seen] first,
//     or expect their apps to register again.
//   - Notices are remembered per client id and policy revision in the KV
//     store for [Config.NoticeTTL] (30 days by default); a client without
//     a client id is notified on every call.
//   - The operator API authorizes before reading the body; an unauthorized
//     call changes nothing. Bearer tokens of [NewTokenAuthorizer] are kept
//     as SHA-256 digests and compared in constant time.
//   - The in-memory store keeps at most 2^20 devices and audit entries (the
//     oldest entries are dropped) and loses everything on restart.
//
// # Performance
//
// BenchmarkEnforce (status + policy, warm cache; AMD EPYC, 2 vCPU shared
// with other work, Go 1.26; -benchtime 1s -count 3):
//
//	floor-map-lookups  two bare map reads keyed like the caches   49-50 ns/op  0 allocs
//	check              Control.Check                            103-112 ns/op  0 allocs (target: 150 ns, 0 allocs)
//	check-parallel     the same from 2 goroutines                95-101 ns/op  0 allocs
//	bare-handler       an empty http.Handler                        2.6 ns/op  0 allocs
//	middleware         Control.Middleware around it             132-181 ns/op  0 allocs
//
// Check costs about 2.1 times the floor. Version strings are parsed
// without allocation and their verdicts remembered per policy; the cache
// clock is an atomic refreshed by a timer, not a clock read per request.
package device
