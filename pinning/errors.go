package pinning

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidPin reports a pin that is not "sha256/" followed by the
	// standard base64 encoding of 32 bytes.
	ErrInvalidPin = errors.New("moat/pinning: invalid pin")
	// ErrInvalidPattern reports a host pattern that is not an exact host,
	// "*." or "**." followed by a host name.
	ErrInvalidPattern = errors.New("moat/pinning: invalid host pattern")
	// ErrPublicSuffix reports a wildcard pattern whose fixed part is a
	// public suffix ("*.com", "**.co.uk"): it would pin a whole top-level
	// or registry domain.
	ErrPublicSuffix = errors.New("moat/pinning: host pattern would pin a public suffix")
	// ErrNoBackupPin reports a rule with fewer than two distinct pins, so
	// that it has no backup pin to move to when the pinned key changes.
	ErrNoBackupPin = errors.New("moat/pinning: a rule needs at least two distinct pins (one of them a backup)")
	// ErrInvalidSet reports a pin set that is malformed or breaks a rule
	// other than the ones with their own error.
	ErrInvalidSet = errors.New("moat/pinning: invalid pin set")

	// ErrPinMismatch reports a verified chain with none of the host's pins.
	// The error returned is a [*PinError] wrapping it.
	ErrPinMismatch = errors.New("moat/pinning: no pin matches the verified certificate chain")
	// ErrNoVerifiedChain reports a connection with no verified chain (the
	// TLS configuration skipped certificate verification) or an empty one.
	ErrNoVerifiedChain = errors.New("moat/pinning: no verified certificate chain to check pins against")
	// ErrHostNotPinned reports a connection to a host no rule covers, when
	// the verifier is not configured to allow unpinned hosts.
	ErrHostNotPinned = errors.New("moat/pinning: no pin rule covers this host")
	// ErrNoServerName reports a connection whose host name the verifier
	// cannot know (an IP address without tls.Config.ServerName, outside
	// [Verifier.Transport]); pins cannot be chosen, so it is refused.
	ErrNoServerName = errors.New("moat/pinning: the connection's host name is unknown")
	// ErrUnsafeTLSConfig reports a base configuration that would bypass
	// pinning: InsecureSkipVerify, or an http.Transport with its own TLS
	// dialer or a RoundTripper that is not an *http.Transport.
	ErrUnsafeTLSConfig = errors.New("moat/pinning: configuration would bypass pinning")

	// ErrInvalidDocument reports a pin-set document that is not a compact
	// JWS with the expected header and payload.
	ErrInvalidDocument = errors.New("moat/pinning: invalid pin-set document")
	// ErrBadSignature reports a pin-set document whose signature does not
	// verify with any trusted key.
	ErrBadSignature = errors.New("moat/pinning: pin-set document signature does not verify")
	// ErrDocumentExpired reports a pin-set document past its expiry.
	ErrDocumentExpired = errors.New("moat/pinning: pin-set document has expired")
	// ErrStaleDocument reports a pin-set document older than the set the
	// client already holds (a rollback).
	ErrStaleDocument = errors.New("moat/pinning: pin-set document is older than the current set")
	// ErrUnsupportedKey reports a signing or verification key other than
	// ECDSA P-256 (ES256) or Ed25519 (EdDSA).
	ErrUnsupportedKey = errors.New("moat/pinning: unsupported key (want ECDSA P-256 or Ed25519)")
	// ErrNotFound reports a [DocumentStore] holding no document.
	ErrNotFound = errors.New("moat/pinning: not found")

	// ErrInvalidReport reports a violation report that is malformed.
	ErrInvalidReport = errors.New("moat/pinning: invalid violation report")
)

// PinError is the error a pinning verifier returns when a verified chain
// carries none of the host's pins. It wraps [ErrPinMismatch].
type PinError struct {
	// Host is the host name the connection was made to.
	Host string
	// Port is the port, or 0 when the verifier could not know it.
	Port int
	// Chain holds the pins of the first verified chain, leaf first.
	Chain []Pin
	// Pins are the pins the set holds for Host.
	Pins []Pin
}

func (e *PinError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: host %q", ErrPinMismatch.Error(), e.Host)
	if e.Port != 0 {
		fmt.Fprintf(&b, " port %d", e.Port)
	}
	b.WriteString(" served keys [")
	for i, p := range e.Chain {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	b.WriteString("]")
	return b.String()
}

// Unwrap returns [ErrPinMismatch].
func (e *PinError) Unwrap() error { return ErrPinMismatch }
