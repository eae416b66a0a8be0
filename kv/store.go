package kv

import (
	"context"
	"time"
)

// Item is a stored value with its version and expiry time.
type Item struct {
	// Value is the stored bytes. Callers own the slice they get.
	Value []byte
	// Version identifies this write of the key. It is never 0 for a
	// stored item, and never reused by the same store for the same key.
	Version uint64
	// ExpiresAt is when the item stops existing.
	ExpiresAt time.Time
}

// Store holds shared, expiring state. Implementations are safe for
// concurrent use by many goroutines and, for shared backends, many
// processes. Every method takes a context first; a cancelled context
// returns its error without changing anything.
//
// Keys are opaque strings of 1 to [MaxKeyLen] bytes; values are opaque bytes.
type Store interface {
	// Get returns the item stored at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)

	// Set stores value at key for ttl, replacing any previous value and
	// expiry, and returns the new version. ttl must be positive.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error)

	// CompareAndSet stores value at key for ttl only if the key is currently
	// at version; version 0 means "only if the key does not exist". It
	// returns the new version, or ErrConflict when the condition does not
	// hold. Of concurrent callers with the same expected version, exactly
	// one succeeds.
	CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (uint64, error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Consume returns the item stored at key and removes it in one atomic
	// step, or returns ErrNotFound. Of concurrent callers, exactly one gets
	// the item.
	Consume(ctx context.Context, key string) (Item, error)

	// Increment adds delta to the decimal counter at key and returns the
	// new value. A missing key counts as 0 and is created with expiry ttl;
	// incrementing an existing key keeps its expiry, so a counter measures
	// a fixed window that starts at its first increment. ttl must be
	// positive. Concurrent increments are never lost. A value not written
	// by Increment gives ErrNotCounter.
	Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}
