package analytics

import "errors"

var (
	// ErrNoDeviceKey: [Config.DeviceKey] is missing or shorter than 32
	// bytes; device ids cannot be pseudonymized without it.
	ErrNoDeviceKey = errors.New("moat/analytics: a device key of at least 32 bytes is required")
	// ErrNoAuthorizer: [HandlerConfig.Authorize] is nil; the query API and
	// dashboard refuse to be built without access control.
	ErrNoAuthorizer = errors.New("moat/analytics: an authorizer is required for the query API and dashboard")
	// ErrInvalidConfig: a configuration value is out of range.
	ErrInvalidConfig = errors.New("moat/analytics: invalid configuration")
	// ErrClosed: the recorder was closed.
	ErrClosed = errors.New("moat/analytics: recorder closed")
	// ErrUnknownKind: a security outcome kind name is not known.
	ErrUnknownKind = errors.New("moat/analytics: unknown security outcome kind")
	// ErrInvalidQuery: a summary or security query is malformed. The
	// wrapped message says what is wrong and is safe to show to the caller.
	ErrInvalidQuery = errors.New("moat/analytics: invalid query")
)
