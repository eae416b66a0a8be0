package kv

import "errors"

var (
	// ErrNotFound reports a key that does not exist or has expired.
	ErrNotFound = errors.New("moat/kv: not found")
	// ErrConflict reports a compare-and-set whose expected version did not
	// match the stored one (or, for version 0, a key that already exists).
	ErrConflict = errors.New("moat/kv: version conflict")
	// ErrInvalidTTL reports a TTL of zero or less: every value must expire.
	ErrInvalidTTL = errors.New("moat/kv: ttl must be positive")
	// ErrInvalidKey reports an empty key or one longer than [MaxKeyLen].
	ErrInvalidKey = errors.New("moat/kv: invalid key")
	// ErrNotCounter reports an Increment on a value that is not a decimal
	// integer written by Increment.
	ErrNotCounter = errors.New("moat/kv: value is not a counter")
	// ErrFull reports that an in-memory store reached its entry limit. The
	// write is refused rather than evicting state that may matter.
	ErrFull = errors.New("moat/kv: store is full")
	// ErrOverflow reports an Increment whose result does not fit in int64.
	ErrOverflow = errors.New("moat/kv: counter overflow")
)

// MaxKeyLen is the longest key any implementation must accept.
const MaxKeyLen = 1024

// ValidKey reports whether key is acceptable to every implementation:
// non-empty and at most [MaxKeyLen] bytes.
func ValidKey(key string) bool {
	return key != "" && len(key) <= MaxKeyLen
}
