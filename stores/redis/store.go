package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/moatsec/moat/kv"
)

// DefaultPrefix is the key and channel prefix used when Config.Prefix (or
// InvalidatorConfig.Prefix) is empty.
const DefaultPrefix = "moat:"

// buckets is how many version counters a store keeps. Each key belongs to
// one bucket, chosen by a CRC-32 of the key, and its entry shares the
// bucket's hash tag, so a script touching both stays in one cluster slot.
// Changing it (or the hash) would move every key: it is part of the
// layout.
const buckets = 16384

// Config configures [New]. The zero value is ready to use.
type Config struct {
	// Prefix starts every key the store writes, so several applications
	// (or several moat deployments) can share one Redis database: give
	// each its own. Empty means DefaultPrefix ("moat:"). Two stores with
	// the same prefix on the same Redis share their state, which is what
	// several instances of one application want.
	Prefix string
}

// Store is the Redis [kv.Store]. It is safe for concurrent use by many
// goroutines and many processes sharing one Redis. See the package
// documentation for the key layout and how each promise is kept.
type Store struct {
	client goredis.UniversalClient
	prefix string
}

var _ kv.Store = (*Store)(nil)

// New returns a Store that keeps its state in the Redis that client talks
// to: a *redis.Client, a failover (Sentinel) client, a *redis.ClusterClient
// or a *redis.Ring. New does no I/O; the first operation connects. The
// caller keeps ownership of client and closes it after the Store is no
// longer used.
func New(client goredis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("moat/redis: a Redis client is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{client: client, prefix: prefix}, nil
}

// keys returns the entry key and its bucket's version counter key:
// <prefix>{<bucket>}:k:<key> and <prefix>{<bucket>}:version.
func (s *Store) keys(key string) []string {
	b := crc32.ChecksumIEEE([]byte(key)) % buckets
	tag := s.prefix + "{" + strconv.FormatUint(uint64(b), 10) + "}"
	return []string{tag + ":k:" + key, tag + ":version"}
}

// fail wraps err, which never carries a key or a value, with the package
// prefix and the operation.
func fail(op string, err error) error {
	if errors.Is(err, ErrMalformed) {
		return fmt.Errorf("%w (%s)", err, op)
	}
	return fmt.Errorf("moat/redis: %s: %w", op, err)
}

// check validates what every method gets. Its errors are the kv sentinels
// (or the context's error), wrapped.
func check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !kv.ValidKey(key) {
		return fail(op, kv.ErrInvalidKey)
	}
	return nil
}

// millis converts a positive ttl to whole milliseconds, rounding up so a
// sub-millisecond ttl still stores the value (for 1ms).
func millis(op string, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fail(op, kv.ErrInvalidTTL)
	}
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms, nil
}

// parseItem reads the {value, version, pttl} a script returned. start is
// when the call began: start+pttl is never later than the true expiry.
func parseItem(res any, start time.Time) (kv.Item, error) {
	r, ok := res.([]any)
	if !ok || len(r) != 3 {
		return kv.Item{}, ErrMalformed
	}
	val, ok := r[0].(string)
	if !ok {
		return kv.Item{}, ErrMalformed
	}
	ver, err := parseVersion(r[1])
	if err != nil {
		return kv.Item{}, err
	}
	pttl, ok := r[2].(int64)
	if !ok || pttl <= 0 {
		return kv.Item{}, ErrMalformed
	}
	return kv.Item{
		Value:     []byte(val),
		Version:   ver,
		ExpiresAt: start.Add(time.Duration(pttl) * time.Millisecond),
	}, nil
}

func parseVersion(res any) (uint64, error) {
	s, ok := res.(string)
	if !ok {
		return 0, ErrMalformed
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, ErrMalformed
	}
	return v, nil
}

// Get implements [kv.Store].
func (s *Store) Get(ctx context.Context, key string) (kv.Item, error) {
	return s.item(ctx, "get", getScript, key)
}

// Set implements [kv.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return s.write(ctx, "set", setScript, key, value, ttl)
}

// CompareAndSet implements [kv.Store].
func (s *Store) CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (uint64, error) {
	return s.write(ctx, "compare-and-set", casScript, key, value, ttl, strconv.FormatUint(version, 10))
}

// write runs a script that stores value for ttl and answers its new
// version, or nil when its condition (extra arguments) does not hold.
func (s *Store) write(ctx context.Context, op string, script *goredis.Script, key string, value []byte, ttl time.Duration, extra ...any) (uint64, error) {
	if err := check(ctx, op, key); err != nil {
		return 0, err
	}
	ms, err := millis(op, ttl)
	if err != nil {
		return 0, err
	}
	res, err := script.Run(ctx, s.client, s.keys(key), append([]any{bytesArg(value), ms}, extra...)...).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, kv.ErrConflict
	}
	if err != nil {
		return 0, fail(op, err)
	}
	v, err := parseVersion(res)
	if err != nil {
		return 0, fail(op, err)
	}
	return v, nil
}

// Delete implements [kv.Store]. It leaves the bucket's version counter
// alone, so a later write of the key gets a version never seen before.
func (s *Store) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if err := check(ctx, op, key); err != nil {
		return err
	}
	if err := s.client.Del(ctx, s.keys(key)[0]).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}

// Consume implements [kv.Store].
func (s *Store) Consume(ctx context.Context, key string) (kv.Item, error) {
	return s.item(ctx, "consume", consumeScript, key)
}

// item runs a script that answers {value, version, pttl} or nil.
func (s *Store) item(ctx context.Context, op string, script *goredis.Script, key string) (kv.Item, error) {
	if err := check(ctx, op, key); err != nil {
		return kv.Item{}, err
	}
	start := time.Now()
	res, err := script.Run(ctx, s.client, s.keys(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return kv.Item{}, kv.ErrNotFound
	}
	if err != nil {
		return kv.Item{}, fail(op, err)
	}
	it, err := parseItem(res, start)
	if err != nil {
		return kv.Item{}, fail(op, err)
	}
	return it, nil
}

// Increment implements [kv.Store].
func (s *Store) Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	const op = "increment"
	if err := check(ctx, op, key); err != nil {
		return 0, err
	}
	ms, err := millis(op, ttl)
	if err != nil {
		return 0, err
	}
	res, err := incrScript.Run(ctx, s.client, s.keys(key), strconv.FormatInt(delta, 10), ms).Result()
	if err != nil {
		return 0, fail(op, err)
	}
	r, ok := res.([]any)
	if !ok || len(r) == 0 {
		return 0, fail(op, ErrMalformed)
	}
	switch r[0] {
	case "ok":
		if len(r) == 2 {
			if v, ok := r[1].(string); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					return n, nil
				}
			}
		}
	case "notcounter":
		return 0, fail(op, kv.ErrNotCounter)
	case "overflow":
		return 0, fail(op, kv.ErrOverflow)
	}
	return 0, fail(op, ErrMalformed)
}

// bytesArg passes a value to Redis as a bulk string; nil becomes empty.
func bytesArg(b []byte) any {
	if b == nil {
		return ""
	}
	return b
}
