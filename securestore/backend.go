package securestore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Backend stores the sealed bytes of a store: its header and its records,
// each under a name. It never sees a key, a plaintext or a secret: every
// value it holds is already encrypted and authenticated, and every name is
// an encrypted or keyed stand-in.
//
// Names satisfy [ValidName]. Values are immutable: after Put the caller
// never modifies the slice it passed, and a caller never modifies a slice
// that Get returned, so an implementation may keep and return the very
// slices it is given.
//
// Implementations are safe for concurrent use. A cancelled context returns
// its error without changing anything.
type Backend interface {
	// Get returns the value stored under name, or ErrNotFound.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put stores value under name, replacing any previous value. It is
	// atomic: a concurrent or later Get, in this process or after a crash,
	// sees the old value or the new one, never a mixture or a truncation.
	// When Put returns nil the value is durable (for backends that persist).
	Put(ctx context.Context, name string, value []byte) error
	// Delete removes name. Deleting a missing name is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names that start with prefix, in ascending byte
	// order.
	List(ctx context.Context, prefix string) ([]string, error)
}

// MaxNameLen is the longest backend name.
const MaxNameLen = 255

// ValidName reports whether name is a valid backend name: 1 to
// [MaxNameLen] bytes of lower-case ASCII letters, digits, '.', '-' and
// '_', not starting with '.'. Such names are safe as file names everywhere,
// including case-insensitive file systems.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameChars[name[i]] {
			return false
		}
	}
	return true
}

// nameChars marks the bytes allowed in a backend name.
var nameChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['.'], t['-'], t['_'] = true, true, true
	return t
}()

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

// MemoryBackend is a [Backend] in memory, for tests and for stores that
// need not outlive the process. The zero value is ready to use.
type MemoryBackend struct {
	mu sync.RWMutex
	m  map[string][]byte
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty memory backend.
func NewMemoryBackend() *MemoryBackend { return &MemoryBackend{} }

// Get implements [Backend].
func (m *MemoryBackend) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.mu.RLock()
	v, ok := m.m[name]
	m.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// Put implements [Backend]. It keeps value itself (values are immutable).
func (m *MemoryBackend) Put(ctx context.Context, name string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	m.mu.Lock()
	if m.m == nil {
		m.m = make(map[string][]byte)
	}
	m.m[name] = value
	m.mu.Unlock()
	return nil
}

// Delete implements [Backend].
func (m *MemoryBackend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.m, name)
	m.mu.Unlock()
	return nil
}

// List implements [Backend].
func (m *MemoryBackend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	var out []string
	for n := range m.m {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	m.mu.RUnlock()
	slices.Sort(out)
	return out, nil
}
