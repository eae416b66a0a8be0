package kv

import (
	"context"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries is the entry limit of a [Memory] store whose
// MemoryConfig.MaxEntries is zero.
const DefaultMaxEntries = 1 << 20

// MemoryConfig configures [NewMemory]. The zero value is ready to use.
type MemoryConfig struct {
	// Now returns the current time. Nil means time.Now. Tests inject a
	// fake clock here to move expiry forward without sleeping.
	Now func() time.Time

	// MaxEntries bounds how many live entries the store holds; a write
	// that would create an entry beyond it fails with ErrFull (expired
	// entries are swept first). Zero means DefaultMaxEntries.
	MaxEntries int
}

// Memory is the in-memory [Store]. It is safe for concurrent use within one
// process; it shares nothing with other processes.
type Memory struct {
	now        func() time.Time
	maxEntries int64
	count      atomic.Int64
	version    atomic.Uint64
	seed       maphash.Seed
	shards     [memoryShards]memoryShard
}

const memoryShards = 64

type memoryShard struct {
	mu     sync.Mutex
	items  map[string]memoryEntry
	writes int
}

type memoryEntry struct {
	value     []byte
	version   uint64
	expiresAt time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{now: cfg.Now, maxEntries: int64(cfg.MaxEntries), seed: maphash.MakeSeed()}
	if m.now == nil {
		m.now = time.Now
	}
	if m.maxEntries <= 0 {
		m.maxEntries = DefaultMaxEntries
	}
	for i := range m.shards {
		m.shards[i].items = make(map[string]memoryEntry)
	}
	return m
}

func (m *Memory) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)%memoryShards]
}

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !ValidKey(key) {
		return ErrInvalidKey
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}

// live returns the unexpired entry at key, removing an expired one. The
// shard lock must be held.
func (m *Memory) live(s *memoryShard, key string, now time.Time) (memoryEntry, bool) {
	e, ok := s.items[key]
	if !ok {
		return memoryEntry{}, false
	}
	if !now.Before(e.expiresAt) {
		delete(s.items, key)
		m.count.Add(-1)
		return memoryEntry{}, false
	}
	return e, true
}

// put writes e at key. The shard lock must be held; existed says whether
// key holds a live entry.
func (m *Memory) put(s *memoryShard, key string, e memoryEntry, existed bool, now time.Time) error {
	if !existed {
		if m.count.Load() >= m.maxEntries {
			return ErrFull
		}
		m.count.Add(1)
	}
	s.items[key] = e
	s.writes++
	if s.writes >= 1024 {
		m.sweep(s, now)
	}
	return nil
}

// sweep drops the expired entries of one shard. The shard lock must be held.
func (m *Memory) sweep(s *memoryShard, now time.Time) {
	s.writes = 0
	for k, e := range s.items {
		if !now.Before(e.expiresAt) {
			delete(s.items, k)
			m.count.Add(-1)
		}
	}
}

// expiry computes the expiry of a write and, when the store is full, sweeps
// every shard first. It must be called without any shard lock held.
func (m *Memory) expiry(now time.Time, ttl time.Duration) (time.Time, error) {
	if ttl <= 0 {
		return time.Time{}, ErrInvalidTTL
	}
	if m.count.Load() >= m.maxEntries {
		for i := range m.shards {
			s := &m.shards[i]
			s.mu.Lock()
			m.sweep(s, now)
			s.mu.Unlock()
		}
	}
	return now.Add(ttl), nil
}

// Get implements [Store].
func (m *Memory) Get(ctx context.Context, key string) (Item, error) {
	if err := check(ctx, key); err != nil {
		return Item{}, err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := m.live(s, key, m.now())
	if !ok {
		return Item{}, ErrNotFound
	}
	return Item{Value: clone(e.value), Version: e.version, ExpiresAt: e.expiresAt}, nil
}

// Set implements [Store].
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	now := m.now()
	exp, err := m.expiry(now, ttl)
	if err != nil {
		return 0, err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, existed := m.live(s, key, now)
	v := m.version.Add(1)
	if err := m.put(s, key, memoryEntry{value: clone(value), version: v, expiresAt: exp}, existed, now); err != nil {
		return 0, err
	}
	return v, nil
}

// CompareAndSet implements [Store].
func (m *Memory) CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (uint64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	now := m.now()
	exp, err := m.expiry(now, ttl)
	if err != nil {
		return 0, err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, existed := m.live(s, key, now)
	switch {
	case version == 0 && existed, version != 0 && (!existed || e.version != version):
		return 0, ErrConflict
	}
	v := m.version.Add(1)
	if err := m.put(s, key, memoryEntry{value: clone(value), version: v, expiresAt: exp}, existed, now); err != nil {
		return 0, err
	}
	return v, nil
}

// Delete implements [Store].
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[key]; ok {
		delete(s.items, key)
		m.count.Add(-1)
	}
	return nil
}

// Consume implements [Store].
func (m *Memory) Consume(ctx context.Context, key string) (Item, error) {
	if err := check(ctx, key); err != nil {
		return Item{}, err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := m.live(s, key, m.now())
	if !ok {
		return Item{}, ErrNotFound
	}
	delete(s.items, key)
	m.count.Add(-1)
	return Item{Value: e.value, Version: e.version, ExpiresAt: e.expiresAt}, nil
}

// Increment implements [Store].
func (m *Memory) Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	now := m.now()
	exp, err := m.expiry(now, ttl)
	if err != nil {
		return 0, err
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, existed := m.live(s, key, now)
	var n int64
	if existed {
		n, err = strconv.ParseInt(string(e.value), 10, 64)
		if err != nil {
			return 0, ErrNotCounter
		}
		exp = e.expiresAt
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, ErrOverflow
	}
	n += delta
	v := m.version.Add(1)
	if err := m.put(s, key, memoryEntry{value: strconv.AppendInt(nil, n, 10), version: v, expiresAt: exp}, existed, now); err != nil {
		return 0, err
	}
	return n, nil
}

// Len reports how many entries the store holds, including expired entries
// that have not been swept yet.
func (m *Memory) Len() int { return int(m.count.Load()) }
