package stepup

import (
	"context"
	"sync"
)

// memoryMap is the locked map behind the simple in-memory stores. The
// zero value is ready to use.
type memoryMap[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (s *memoryMap[V]) get(ctx context.Context, key string) (V, error) {
	var zero V
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return zero, ErrNotFound
	}
	return v, nil
}

func (s *memoryMap[V]) put(ctx context.Context, key string, v V) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]V{}
	}
	s.m[key] = v
	return nil
}

func (s *memoryMap[V]) delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}
