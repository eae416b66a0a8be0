// Package update is moat's Direct Update: signed, expiring updates of the
// web resources inside installed apps, delivered as full or differential
// bundles and installed atomically, so a team can ship a fix to every app
// at once without a store review, and an attacker who controls the network
// or the download server cannot install anything the team did not sign.
//
// # The main path
//
// The operator makes signing keys ([GenerateKey]) and a trust root
// ([SignRoot]) that lists the keys allowed to sign the next root and those
// allowed to sign manifests, each with a threshold. The app ships that
// root.
//
// A [Publisher] packs a directory (any fs.FS, such as an embed.FS) into a
// release: a deterministic zip bundle of every file, a [Manifest] signed
// by the manifest keys, and a differential bundle from every earlier
// release to the new one. Releases live in a [Store]: [NewFileStore] on
// disk, [NewMemoryStore] for tests and demos.
//
// A [Server] (an http.Handler) answers update checks with the newest
// signed manifest and the URL of the best bundle for the caller, serves
// bundles with ETag and Range support, serves roots so that clients follow
// rotations, and gates protected APIs: [Server.Required] and
// [Server.RequireUpdated] refuse clients that lack a mandatory update with
// 403 update_required.
//
// A [Client] in the app (or in a Go program) follows root rotations,
// checks, verifies the manifest, downloads the bundle, verifies every file
// and switches the installation to the new version atomically ([Client.Update],
// or [Client.Check] then [Client.Apply]). [Client.Path] is the directory
// the app serves its web resources from; [Client.Rollback] goes back one
// version. [Client.Transport] reports the installed version to the server
// on every request (header [HeaderBundleVersion]).
//
// The command `moat update` (keygen, root init, root rotate, publish,
// verify, apply) wraps all of this for operators.
//
// # Formats
//
// Everything is JSON and JWS (RFC 7515) so that a Swift or Kotlin client
// needs only a JSON parser, base64url, SHA-256 and Ed25519 or ECDSA P-256
// verification.
//
// Signed documents (roots and manifests) use the JWS General JSON
// Serialization and nothing else:
//
//	{"payload":"<base64url>","signatures":[{"protected":"<base64url>","signature":"<base64url>"}, ...]}
//
// base64url is unpadded (RFC 7515 §2) and must be canonical. Exactly the
// members shown are allowed (no unprotected "header"); 1 to 32 signatures.
// Each protected header decodes to a JSON object with exactly "alg"
// ("EdDSA" or "ES256"), "kid" (the signing key's id) and "typ"
// ("moat-update-root+json" for roots, "moat-update-manifest+json" for
// manifests). A signature is checked as in RFC 7515 §5.2 over
// ASCII(protected || "." || payload); ES256 signatures are the 64-byte
// R || S form (RFC 7518 §3.4), EdDSA is Ed25519 (RFC 8037).
//
// Every JSON object here (envelopes, headers, payloads, keys, the delta
// description) must be parsed strictly: a duplicate member name anywhere,
// a member not listed here, a missing member, a wrong type, nesting deeper
// than 16 or anything after the object makes the document malformed.
// Member names are compared exactly, byte for byte after unescaping:
// "Size" or "SIZE" is not "size" (and is malformed, not ignored).
// Integers are JSON integers from 0 to 2^53-1 (no fraction, no exponent).
// Times are integer Unix seconds.
//
// A key id is the unpadded base64url SHA-256 JWK thumbprint (RFC 7638) of
// the public key. Public keys in roots are JWKs with exactly these members:
// {"kty":"OKP","crv":"Ed25519","x":...,"kid":...} or
// {"kty":"EC","crv":"P-256","x":...,"y":...,"kid":...}; "kid" must equal the
// key's thumbprint, P-256 points must be on the curve, and a key may be
// listed once per role.
//
// The root payload:
//
//	{"type":"moat.update.root.v1", "version":N, "expires":UNIX,
//	 "root_keys":[JWK...], "root_threshold":T1,
//	 "manifest_keys":[JWK...], "manifest_threshold":T2}
//
// with version ≥ 1, 1 to 32 keys per role and 1 ≤ threshold ≤ number of
// keys. The manifest payload:
//
//	{"type":"moat.update.manifest.v1", "app_id":"com.example.app",
//	 "platform":"ios", "app_versions":">=2.1 <3", "bundle_version":7,
//	 "created":UNIX, "expires":UNIX, "mandatory":false,
//	 "files":[{"path":"index.html","size":1234,"sha256":"<64 lowercase hex>"}, ...]}
//
// app_id is 1 to 128 bytes of [A-Za-z0-9._-] not starting with "."; platform
// 1 to 32 bytes of [a-z0-9_-]; bundle_version ≥ 1; 0 < created < expires;
// at most 100,000 files, sorted by path in byte order without duplicates,
// sizes ≥ 0 and summing to at most 2^53-1.
//
// app_versions is "*" (any native version) or comparators separated by
// single spaces that must all hold, each one of >=, >, <=, <, = followed by
// a version of 1 to 4 dot-separated decimal numbers (no sign, no leading
// zero, at most 9 digits; missing parts are 0): ">=2.1 <3". A native
// version that is not of that form matches nothing.
//
// A path is 1 to 1024 bytes of printable ASCII (0x20-0x7E) without any of
// \ : * ? " < > |, split by "/" into segments that are not empty, "." or
// "..", and do not end in a space or a dot; the first segment is not
// ".moat" in any case. No two paths may be equal when ASCII letters are
// compared without case, no path may equal (without case) a directory of
// another, and one directory may not be spelled with two casings. So a
// bundle never escapes its directory nor means different files on a
// case-insensitive file system (APFS, NTFS).
//
// # Verification rules
//
// Signature threshold: the signatures of a document count for a role when
// their "typ" is the document's; count the distinct key ids, among the
// role's keys, that made at least one valid signature (with the algorithm
// of that key's type); unknown key ids and invalid signatures count for
// nothing (a malformed header makes the whole document malformed). The
// document is accepted when the count reaches the role's threshold.
//
// Roots. The app trusts the root it ships (whose own root keys must reach
// its threshold). To follow rotations, before each check it fetches root
// version N+1 (GET BASE/roots/{N+1}.json) until the server answers 404 (at
// most 64 steps): root N+1 is accepted only if it reaches root N's
// root threshold with root N's keys, reaches its own root threshold with
// its own keys, and its version is exactly N+1. Intermediate roots may be
// expired; the newest root may not (expired means now ≥ expires): with an
// expired newest root, nothing is installed. The client keeps the newest
// root it accepted and never goes back to an older one.
//
// Manifests, in this order, so that a forged manifest is never reported as
// merely expired: the signatures must reach the newest root's manifest
// threshold with its manifest keys; the payload must be well formed; the
// root and then the manifest must not be expired (now ≥ expires is
// expired: a manifest whose expiry equals now is refused, one second
// before is accepted); app_id and platform must be the app's; the app's
// native version must be inside app_versions; bundle_version must be
// greater than the installed version (else rollback).
//
// Bundles are zip archives (APPNOTE 6.3.x) of stored or deflated entries,
// one per file, named by the file's path. A full bundle holds every file
// of the manifest. A differential bundle from version F holds the files
// that are new or changed since F and the entry ".moat/delta.json":
//
//	{"type":"moat.update.delta.v1","from":F,"to":T,"deleted":["path", ...]}
//
// with deleted sorted. A client checks, before extracting anything: every
// entry is a file of the manifest (or the delta description in a
// differential bundle), appears once, is not encrypted, uses Store or
// Deflate, and declares the manifest's size; a full bundle has every file;
// a differential bundle's from is the installed version and to the
// manifest's, its deleted list is exactly the installed files the manifest
// no longer has, and every file it does not carry is installed with the
// manifest's size and SHA-256. While extracting it stops any entry that
// inflates past its declared size and checks every file's length and
// SHA-256 against the manifest; files kept from the installed version are
// hashed again as they are copied. The download itself is refused beyond
// what a valid bundle for the manifest could weigh.
//
// # The HTTP protocol
//
// Under the server's base URL:
//
//	GET /{app}/{platform}/check?app_version=V&bundle_version=N
//	  204: nothing newer for this native version
//	  200: {"manifest":{JWS}, "bundle_version":7, "mandatory":true,
//	        "bundle":{"url":"bundles/7/from-6.zip","from":6,"size":12345}}
//	GET /{app}/{platform}/bundles/{version}/full.zip | from-{N}.zip
//	  the bundle, with a strong ETag, Range and If-Range (immutable)
//	GET /roots/{N}.json
//	  root version N, or 404
//
// bundle.url is relative to the check URL. The server offers the newest
// release whose manifest has not expired and whose app_versions hold V (any
// release when V is absent); the differential bundle from N when it exists
// and is smaller, else the full bundle. Clients act on the verified
// manifest only: bundle_version and mandatory in the response are hints.
//
// Apps report their installed bundle version on API requests in the header
// Moat-Bundle-Version (decimal; absent means none). A server gate refuses a
// client when a release newer than that version, for its app, platform and
// native version, with an unexpired manifest, is mandatory:
//
//	403 {"error":"update_required","error_description":...,
//	     "bundle_version":1,"required_bundle_version":2,"latest_bundle_version":3}
//
// The client then checks and applies, and retries.
//
// # Installation
//
// The installation directory holds one directory per version (vN/files and
// vN/manifest.json), a symbolic link "current" to the installed one and
// "previous" to the one it replaced. An apply takes a lock (flock, so a
// crash never leaves it held), downloads into a temporary file, extracts
// and verifies into a new staging directory, makes it durable (syncfs on
// Linux, fsync of every file elsewhere), renames it to vN, and then
// replaces the "current" link by rename(2): the one atomic step that
// changes what the app sees. A kill at any moment leaves "current" on the
// complete old or the complete new version (a test kills the applying
// process at random moments to hold that), and the next apply removes the
// leftovers.
//
// # Security properties and limits
//
//   - Only content signed by a threshold of the current root's manifest
//     keys is installed; a key compromise below the threshold does nothing,
//     and roots rotate keys without shipping a new app.
//   - No rollback: a client never installs a version older than or equal
//     to its own, nor goes back to an older root.
//   - Freeze attacks are bounded by expiry: a network attacker can withhold
//     new releases, but only until the manifests it holds expire. Keep
//     manifest lifetimes short (days to weeks) and publish before they end.
//     Unlike TUF, there is no separate timestamp role that proves
//     freshness more often than the manifest's lifetime.
//   - The update gate relies on the version the client reports: it makes
//     honest clients apply mandatory updates before going on; it does not
//     prove what a modified client runs (app attestation does that).
//   - An installed version is trusted as it is on disk: local tampering is
//     caught only when a differential update copies a tampered file.
//   - Releases whose manifests expired stop being offered and stop gating;
//     an app whose only release expired gets nothing until the next publish.
//   - Windows-reserved file names (CON, NUL...) are not refused; the
//     installation layout needs symbolic links (every Unix, Android, iOS).
//
// # Performance
//
// Measured on the project's 2-core build machine (AMD EPYC with SHA
// extensions, go test -bench, -count 3; bench_test.go):
//
//   - BenchmarkPublish over a generated 100 MB tree (about 800 files):
//     sha256-floor, reading and hashing the files, 95-102 ms (1.03-1.10
//     GB/s); publish with stored entries 108-115 ms (0.91-0.97 GB/s), about
//     88% of the floor, 4.3 MB and 25,500 allocations per publish;
//     publish-deflate 380-400 ms (about 265 MB/s); publish-filestore, which
//     also writes the bundle to disk and syncs it, 200-220 ms (about
//     500 MB/s, bound by the disk). Deflate trades that speed for smaller
//     downloads of text resources: stored entries are the default.
//   - BenchmarkApply200MB, installing a 200 MB full bundle (200 files of
//     1 MB) served over loopback: 0.9-1.4 s, peak heap growth 2.4-2.8 MiB
//     (sampled with runtime.ReadMemStats), 3.3 MB allocated in all: files
//     stream through fixed 256 KiB buffers. TestApplyMemoryBounded holds
//     every run to less than 16 MiB of growth for a bundle whose single
//     file is 24 MiB.
//   - The switch to a new version costs one syncfs(2) on Linux (an fsync
//     per file and directory elsewhere) plus two renames.
package update
