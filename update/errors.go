package update

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a release, bundle, root version or installed
	// version that does not exist.
	ErrNotFound = errors.New("moat/update: not found")
	// ErrConflict reports a release whose bundle version is not greater than
	// every version already published for its app and platform.
	ErrConflict = errors.New("moat/update: bundle version already published or older than the latest")
	// ErrMalformed reports a root, manifest, key, bundle or request that does
	// not follow the format. Its text never echoes the input.
	ErrMalformed = errors.New("moat/update: malformed")
	// ErrSignature reports a root or manifest whose signatures do not reach
	// the threshold of trusted keys (forged, unknown key, too few signers).
	ErrSignature = errors.New("moat/update: signature threshold not met")
	// ErrExpired reports a root or manifest whose expiry time has been
	// reached (a document whose expiry equals now is expired).
	ErrExpired = errors.New("moat/update: expired")
	// ErrRollback reports a bundle version that is not newer than the
	// installed one, or a root version that does not follow the trusted one.
	ErrRollback = errors.New("moat/update: version not newer than the installed one")
	// ErrWrongTarget reports a validly signed manifest for another app,
	// platform or native app version.
	ErrWrongTarget = errors.New("moat/update: manifest is not for this app, platform or app version")
	// ErrIntegrity reports bundle content that does not match the signed
	// manifest: a wrong hash or size, a missing, extra or duplicated file,
	// or a differential bundle that does not fit the installed version.
	ErrIntegrity = errors.New("moat/update: bundle does not match the manifest")
	// ErrUnsafePath reports a path that could escape the target directory
	// or collide with another path (absolute, "..", backslash, case-only
	// differences). Errors carrying it also match ErrIntegrity.
	ErrUnsafePath = errors.New("moat/update: unsafe path")
	// ErrTooLarge reports a download, archive entry or document over its
	// size limit (a zip bomb, or a bundle over the client's limit).
	ErrTooLarge = errors.New("moat/update: size limit exceeded")
	// ErrNetwork reports a failed request to the update server; see
	// [NetworkError].
	ErrNetwork = errors.New("moat/update: network error")
	// ErrDiskSpace reports that the installation directory's file system
	// has too little free space for the update.
	ErrDiskSpace = errors.New("moat/update: not enough disk space")
	// ErrInProgress reports that another apply or rollback holds the
	// installation directory's lock.
	ErrInProgress = errors.New("moat/update: an update is already in progress")
	// ErrUpdateRequired reports a client that lacks a mandatory update; see
	// [RequiredError].
	ErrUpdateRequired = errors.New("moat/update: update required")
)

// NetworkError is a failed exchange with the update server: a transport
// error or an unexpected HTTP status. It matches [ErrNetwork].
type NetworkError struct {
	// URL is the request URL (it carries no secret).
	URL string
	// StatusCode is the HTTP status, or 0 for a transport error.
	StatusCode int
	// Err is the transport error, if any.
	Err error
}

func (e *NetworkError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("moat/update: network error: %s answered HTTP %d", e.URL, e.StatusCode)
	}
	return fmt.Sprintf("moat/update: network error: %s: %v", e.URL, e.Err)
}

// Is makes errors.Is(err, ErrNetwork) true.
func (e *NetworkError) Is(target error) bool { return target == ErrNetwork }

// Unwrap returns the transport error.
func (e *NetworkError) Unwrap() error { return e.Err }

// RequiredError tells a client which mandatory update it lacks. It matches
// [ErrUpdateRequired].
type RequiredError struct {
	// Installed is the bundle version the client reported (0: none).
	Installed uint64
	// Required is the highest mandatory bundle version newer than Installed.
	Required uint64
	// Latest is the newest bundle version the client can install.
	Latest uint64
}

func (e *RequiredError) Error() string {
	return fmt.Sprintf("moat/update: update required: bundle version %d is installed, mandatory version %d (latest %d) must be applied first",
		e.Installed, e.Required, e.Latest)
}

// Is makes errors.Is(err, ErrUpdateRequired) true.
func (e *RequiredError) Is(target error) bool { return target == ErrUpdateRequired }

// malformed wraps ErrMalformed with a description that never quotes input.
func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// integrity wraps ErrIntegrity with a description.
func integrity(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIntegrity}, a...)...)
}

// unsafePath reports a path problem; it matches ErrUnsafePath and
// ErrIntegrity.
func unsafePath(reason string) error {
	return fmt.Errorf("%w: %w: %s", ErrIntegrity, ErrUnsafePath, reason)
}

// errLocked is lockFile's answer when another holder has the lock.
var errLocked = errors.New("moat/update: locked")
