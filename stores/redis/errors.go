package redis

import "errors"

var (
	// ErrClosed reports a use of an [Invalidator] after Close.
	ErrClosed = errors.New("moat/redis: invalidator closed")

	// ErrMalformed reports an entry under the store's prefix that this
	// package did not write: a missing field, a version that is not a
	// positive integer, or no expiry. It is an error, not a miss, so the
	// caller fails closed; the entry is left for an operator to look at.
	ErrMalformed = errors.New("moat/redis: malformed entry")
)
