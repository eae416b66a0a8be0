// Package pinning makes an app's Go TLS client talk only to its real
// servers: public-key pins per host pattern with backup pins, checked
// against the verified certificate chain; pin sets that servers sign and
// publish and clients refresh; and violation reports.
//
// Certificate verification alone accepts any certificate from any CA the
// device trusts. Pinning also requires that a key the operator chose (the
// server's own key, or its CA's) is on the chain, so that an impostor with
// a certificate from some trusted-but-wrong CA is refused. Done wrong,
// pinning either lets that impostor in or locks every installed app out
// on the day the server's key changes. This package is built to avoid both.
//
// # The main path
//
// An app builds a [Set] of [Rule]s: a host pattern and at least two pins,
// the key in service ([PinOf] a certificate, [PinOfPublicKey] a key, or
// [ParsePin] "sha256/BASE64") and a backup key kept offline
// ([GenerateBackup]):
//
//	_, backup, _ := pinning.GenerateBackup() // keep the private key offline
//	set, err := pinning.NewSet(pinning.SetConfig{Rules: []pinning.Rule{
//		{Pattern: "api.example.com", Pins: []pinning.Pin{pinning.PinOf(cert), backup}},
//	}})
//	roots, err := x509.SystemCertPool() // or the app's own roots
//	client, err := pinning.NewClient(set, roots)
//
// For more control, [NewVerifier] takes a [Config] (mode, reporter,
// unpinned hosts, clock) and wraps the caller's own settings:
// [Verifier.TLSConfig] for a *tls.Config, [Verifier.Transport] for an
// *http.Transport (an http.RoundTripper), [Verifier.Client] for an
// *http.Client. Each clones its argument, keeps its settings, and chains
// any VerifyConnection it already had after the pin check.
//
// A server publishes its pin set as a signed [Document] ([SignDocument],
// usually offline with "moat pins sign") served by a [DocumentHandler] at
// [WellKnownPath] ("/.well-known/moat-pins"). The app gives a [Refresher]
// to [Config].Pins instead of a fixed set: it starts from the set built
// into the app, loads the last good document from a [DocumentStore]
// ([MemoryStore], [NewFileStore]), and keeps it current in the background
// ([Refresher.Run]). Violations go to a report URI through a
// [ReportSender], and a server receives them with a [ReportHandler].
//
// # Standards
//
// Pins are RFC 7469 §2.4 SPKI fingerprints (SHA-256 of the DER
// SubjectPublicKeyInfo) in OkHttp's and TrustKit's "sha256/BASE64" text
// form; "moat pins compute" prints the same value as
// "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
// openssl dgst -sha256 -binary | base64". Host patterns follow OkHttp's
// CertificatePinner. Documents are RFC 7515 JWS in compact serialization,
// ES256 or EdDSA, "kid" the RFC 7638 thumbprint of the signing key, "typ"
// [DocumentType]. The well-known path follows RFC 8615 but is not
// registered. Reports are in the spirit of RFC 7469 §3 (HPKP's
// report-uri), with pins instead of certificates.
//
// # Host patterns
//
// A pattern is an exact host ("api.example.com", "127.0.0.1", "::1"),
// "*." and a host (exactly one more label), or "**." and a host (zero or
// more labels). For the hosts a.example.com, a.b.example.com, example.com,
// a.example.com.evil.net and A.EXAMPLE.COM.:
//
//	*.example.com    yes  no   no   no  yes
//	**.example.com   yes  yes  yes  no  yes
//	example.com      no   no   yes  no  no
//
// Matching is case-insensitive, ignores a trailing dot, compares IP
// addresses in canonical form, and happens on whole labels only. When
// several rules match a host, their pins add up. A wildcard whose fixed
// part is a public suffix is refused ([ErrPublicSuffix]): every single
// label ("*.com", "**.co") and a small built-in list of common multi-label
// suffixes ("*.co.uk", "**.github.io"); see "Security properties and
// limits".
//
// # Verification
//
// The check runs in tls.Config.VerifyConnection, after Go has verified the
// chain (so it also runs on resumed sessions, whose verified chains Go
// keeps). A connection passes when any certificate on any of
// ConnectionState.VerifiedChains carries one of the host's pins. The
// chain the server sent (PeerCertificates) is never the basis: a server can
// append any genuine certificate to it, and an impostor holding a
// certificate from another trusted CA would append the pinned intermediate.
// No verified chain (InsecureSkipVerify) or an empty one is
// [ErrNoVerifiedChain]; the helpers refuse configurations that would
// bypass the check ([ErrUnsafeTLSConfig]).
//
// In [Enforce] mode (the zero value) a mismatch fails the handshake with a
// [*PinError] wrapping [ErrPinMismatch]. In [ReportOnly] mode it is only
// reported, to see what a new set would break before enforcing it. Hosts no
// rule covers are refused ([ErrHostNotPinned]) unless
// [Config].AllowUnpinnedHosts. The host is the name the certificate was
// verified for: [Verifier.Transport] knows it (and the port) from the
// address it dials; [Verifier.TLSConfig] uses tls.Config.ServerName, else
// the SNI name, which is empty for IP addresses ([ErrNoServerName]).
//
// A set may expire ([SetConfig].Expires). After it, [KeepEnforcing] keeps
// checking the pins (safe against an attacker, but an app that never gets
// a fresh set stays locked to them) and [StopEnforcing] stops (TrustKit's
// behaviour: ordinary verification only). The operator must choose one.
//
// # Signed pin sets
//
// A document's payload is the set's JSON form (see [Set.MarshalJSON]) plus
// "issued_at"; it always has a version of at least 1, an expiry, and a
// backup pin in every rule. [ParseDocument] checks, in order: the JWS
// form, the "typ" and the algorithm (only ES256 and EdDSA); the signature
// against the trusted keys (several while the signing key rotates); then
// the payload. A [Refresher] then refuses an expired document
// ([ErrDocumentExpired]) and one whose version is below the set in force
// ([ErrStaleDocument]: a rollback), saves an accepted one before using it,
// and never lets a failed refresh change the set in force. At start it
// uses the saved document when it verifies and its version is at least the
// built-in set's, even if it has expired since (it is the newest known).
// Fetch the document with an unpinned client: its signature protects it,
// and a refresh must still work when the pins in force are the problem.
//
// # Reports
//
// A [Report] says which host and port, when, in which mode, the pins of
// the chain served and of the chain verified, and the pins expected. A
// [ReportSender] posts them as JSON in the background: [ReportSender.Report]
// never blocks, drops duplicates within a window, and rate-limits with a
// token bucket, so a flood of violations sends at most
// Burst + elapsed/Interval reports. A [ReportHandler] accepts only POSTed
// JSON up to a size limit that [ParseReport] validates (shape, hosts,
// ports, pins, list lengths) and hands each report to a callback; the root
// package wires that callback to analytics. Anyone can post a report: it is
// a signal, not a fact.
//
// # Rolling a server key without locking out installed apps
//
// An installed app accepts only the keys in its pin set, and some apps are
// never updated. Every key change must therefore move to a key that every
// installed app already pins. The backup pin is that key.
//
//  1. From the start, pin two keys per host: the key in service and a
//     backup whose private key was generated offline ([GenerateBackup] or
//     "moat pins backup") and is kept offline, never in the served chain.
//     "moat pins check" warns when no pin is outside the chain. Pin keys,
//     not certificates: renewing a certificate for the same key changes
//     nothing ([PinOf] depends only on the public key). Pinning a CA's key
//     instead lets you change leaf keys freely but ties you to that CA;
//     keep at least one pin on a key you control.
//  2. Planned rotation from key A (in service) to backup B: generate the
//     next backup C first. Publish a set with a higher version pinning A, B
//     and C, put the same set in the next app release, and wait until the
//     apps in use have it: several refresh intervals, and longer for apps
//     that are rarely opened. Apps that missed it still pin A and B, so
//     step 3 works for them too; C keeps a backup outside the chain after
//     it.
//  3. Get a certificate for B and deploy it. Every app accepts it: B was
//     pinned all along.
//  4. Publish the next version pinning B and C, without A, and ship it in
//     the next release. C is now the offline backup; start again at 2 for
//     the next rotation.
//  5. If A is compromised, skip the waiting: deploy B at once (every app
//     already accepts it), then publish a set without A and with a new
//     backup.
//
// Before enforcing a new set, a [ReportOnly] verifier with it shows who
// would be refused. Re-sign the document with a higher version well
// before its expiry; an expiry much longer than the refresh interval
// gives apps that are rarely opened time to refresh. Keep the document
// signing key apart from the TLS keys and offline too; to change it, ship
// both public keys in [RefresherConfig].Keys first.
//
// # Security properties and limits
//
//   - Pins are checked only by Go clients configured through this package
//     (the client package and the examples); apps on other stacks need
//     their own pinning (OkHttp's CertificatePinner, TrustKit) fed the
//     same pins.
//   - Pinning adds to certificate verification and never replaces it: the
//     chain must verify to the configured roots first.
//   - The public-suffix check does not use the Public Suffix List (not a
//     dependency of this module): it refuses every single-label suffix and
//     about 200 common multi-label ones (second-level registry domains of
//     large country-code TLDs, and hosting platforms such as github.io and
//     herokuapp.com), but not every entry of the list. Review wildcard
//     patterns by hand.
//   - Internationalized host names must be written in their ASCII
//     ("xn--") form: the package has no IDNA mapping.
//   - Outside [Verifier.Transport], the verifier cannot know the port
//     (reports carry 0) and cannot pin a connection to an IP address unless
//     tls.Config.ServerName is set. Through an HTTPS proxy the proxy
//     connection is pinned too (give it a rule, or allow unpinned hosts).
//   - [ReportOnly] and [StopEnforcing] after expiry give no protection;
//     InsecureNoBackupPin gives no way out when a key changes. Signed
//     documents never carry a set without backups.
//   - Reports are unauthenticated and their times are the client's clock.
//   - A stolen document signing key lets an attacker who also controls
//     the network publish pins for their own key; keep it offline.
//
// # Performance
//
// The pin check hashes the SubjectPublicKeyInfo of each certificate on the
// verified chains (three here) once and compares digests.
// BenchmarkVerifyConnection, on a shared and heavily loaded 2-core AMD
// EPYC (load average near 10), measured:
//
//	baseline  full TLS 1.3 handshake on loopback, ECDSA P-256,
//	          no resumption, no pinning            1.2-2.0 ms, 923 allocs
//	pinned    the same with pinning                1.3-2.2 ms, 924 allocs
//	check     the pin check alone                  0.7-1.3 µs, 1 alloc (96 B)
//
// The handshake figures vary by more than the pinning cost from run to
// run on that machine; the check alone is under 0.1% of a handshake (one
// more allocation of 96 bytes), far within the 2% budget.
package pinning
