// Package moat protects a Go API server the way a serious mobile backend
// needs: every app installation registers a key (and, where the platform
// allows, proves it is a genuine, unmodified build), users sign in through
// server-defined security checks, every call proves it comes from the
// registered installation, and sensitive calls ask for more (an SMS code
// only when the user pays). Lost or stolen devices and old app versions are
// refused on their very next request.
//
// # The tour
//
// [Stack] assembles the capability packages from one [Config]:
//
//   - [github.com/moatsec/moat/auth]: the authorization server (registration,
//     the Authorization Challenge Endpoint, DPoP-bound tokens, refresh,
//     introspection, revocation, discovery) and the resource middleware.
//   - [github.com/moatsec/moat/stepup]: the security checks (password, SMS and
//     e-mail codes, TOTP, HOTP, PIN, device key, recovery codes), lockout,
//     and step-up policies (RFC 9470).
//   - [github.com/moatsec/moat/attest]: App Attest, Android Key Attestation
//     and Play Integrity, verified offline at registration.
//   - [github.com/moatsec/moat/device]: device status, app-version policy,
//     the operator API and its audit trail.
//   - [github.com/moatsec/moat/pinning], [github.com/moatsec/moat/securestore],
//     [github.com/moatsec/moat/update], [github.com/moatsec/moat/analytics]:
//     certificate pinning, encrypted storage, signed web-resource updates and
//     analytics, usable alone.
//   - [github.com/moatsec/moat/client]: the app side in Go.
//   - [github.com/moatsec/moat/kv]: shared expiring state; the Redis and
//     PostgreSQL backends are separate modules under stores/.
//
// A protected request passes, in order: recover, token and DPoP proof,
// device status and version policy, scope, step-up policy, then the
// handler ([Stack.Protect]). Each stage is also a method of its own
// ([Stack.Authenticate], [Stack.DeviceCheck], [Stack.Scope],
// [Stack.StepUp]) for servers that compose their own chain. What a stage
// learned travels in the request context: auth.PrincipalFrom(ctx).
//
// The example under examples/travel is the whole story, runnable with
// "go run ./examples/travel".
//
// # Security properties
//
// Everything fails closed: a store error, an unknown device, a malformed
// token or proof is refused (503 for a failure to decide, 401/403 for a
// refusal), never let through. Tokens are bound to the installation's key
// (DPoP), so a stolen token is useless elsewhere. Device blocks do not wait
// for tokens to expire: every protected request is checked. Secrets
// (passwords, codes, tokens, keys) never reach logs, errors or analytics.
package moat
