package securestore

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2Params is the cost of turning a passcode into a key-encryption key
// with Argon2id (RFC 9106). The parameters and a random salt are stored in
// the store's header, so a store created on one machine opens on another
// with the cost it was created with.
//
// Each zero field takes its default: Time 3, MemoryKiB 65536 (64 MiB),
// Threads 4, the second recommended option of RFC 9106 section 4. Non-zero
// values must lie within the bounds below; a header whose parameters lie
// outside them is refused with [ErrUnsafeParameters] before any memory is
// allocated.
type Argon2Params struct {
	// Time is the number of passes, 1 to 16.
	Time uint32
	// MemoryKiB is the memory cost in KiB, 8192 (8 MiB) to 1048576 (1 GiB).
	MemoryKiB uint32
	// Threads is the parallelism, 1 to 16.
	Threads uint8
}

// Bounds for Argon2Params, checked on every header before a derivation.
const (
	MinArgon2Time      = 1
	MaxArgon2Time      = 16
	MinArgon2MemoryKiB = 8 << 10
	MaxArgon2MemoryKiB = 1 << 20
	MinArgon2Threads   = 1
	MaxArgon2Threads   = 16
)

// Defaults for zero fields of [Argon2Params]: RFC 9106's second
// recommended option.
const (
	DefaultArgon2Time      = 3
	DefaultArgon2MemoryKiB = 64 << 10
	DefaultArgon2Threads   = 4
)

// withDefaults fills zero fields.
func (p Argon2Params) withDefaults() Argon2Params {
	if p.Time == 0 {
		p.Time = DefaultArgon2Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultArgon2MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = DefaultArgon2Threads
	}
	return p
}

// validate checks the bounds. It allocates nothing.
func (p Argon2Params) validate() error {
	switch {
	case p.Time < MinArgon2Time || p.Time > MaxArgon2Time:
		return fmt.Errorf("%w: time %d not in [%d, %d]", ErrUnsafeParameters, p.Time, MinArgon2Time, MaxArgon2Time)
	case p.MemoryKiB < MinArgon2MemoryKiB || p.MemoryKiB > MaxArgon2MemoryKiB:
		return fmt.Errorf("%w: memory %d KiB not in [%d, %d]", ErrUnsafeParameters, p.MemoryKiB, MinArgon2MemoryKiB, MaxArgon2MemoryKiB)
	case p.Threads < MinArgon2Threads || p.Threads > MaxArgon2Threads:
		return fmt.Errorf("%w: threads %d not in [%d, %d]", ErrUnsafeParameters, p.Threads, MinArgon2Threads, MaxArgon2Threads)
	}
	return nil
}

// Argon2MemoryBudgetKiB is the memory that concurrent Argon2id derivations
// of this process may use together (1 GiB): a derivation waits, honouring
// its context, until its memory fits in the budget. Parallel opens of many
// stores therefore cannot exhaust memory.
const Argon2MemoryBudgetKiB = MaxArgon2MemoryKiB

var argon2Limiter = newWeighted(Argon2MemoryBudgetKiB)

// deriveKEK runs Argon2id within the process-wide memory budget.
func deriveKEK(ctx context.Context, passcode, salt []byte, p Argon2Params) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := argon2Limiter.acquire(ctx, int64(p.MemoryKiB)); err != nil {
		return nil, err
	}
	defer argon2Limiter.release(int64(p.MemoryKiB))
	return argon2.IDKey(passcode, salt, p.Time, p.MemoryKiB, p.Threads, 32), nil
}

// weighted is a first-come first-served weighted semaphore.
type weighted struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters list.List // of *waiter
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newWeighted(size int64) *weighted { return &weighted{size: size} }

// acquire takes n units, waiting while they are not free or earlier
// callers wait. n must not exceed the size.
func (w *weighted) acquire(ctx context.Context, n int64) error {
	if n > w.size {
		return fmt.Errorf("%w: derivation larger than the memory budget", ErrUnsafeParameters)
	}
	w.mu.Lock()
	if w.used+n <= w.size && w.waiters.Len() == 0 {
		w.used += n
		w.mu.Unlock()
		return nil
	}
	wt := &waiter{n: n, ready: make(chan struct{})}
	elem := w.waiters.PushBack(wt)
	w.mu.Unlock()
	select {
	case <-wt.ready:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		select {
		case <-wt.ready:
			// Granted while we were giving up: hand the units back.
			w.used -= n
			w.notify()
		default:
			front := w.waiters.Front() == elem
			w.waiters.Remove(elem)
			if front {
				w.notify()
			}
		}
		w.mu.Unlock()
		return ctx.Err()
	}
}

// release returns n units.
func (w *weighted) release(n int64) {
	w.mu.Lock()
	w.used -= n
	if w.used < 0 {
		w.mu.Unlock()
		panic("securestore: semaphore released more than held")
	}
	w.notify()
	w.mu.Unlock()
}

// notify wakes waiters in order while they fit. Called with mu held.
func (w *weighted) notify() {
	for {
		front := w.waiters.Front()
		if front == nil {
			return
		}
		wt := front.Value.(*waiter)
		if w.used+wt.n > w.size {
			return
		}
		w.used += wt.n
		w.waiters.Remove(front)
		close(wt.ready)
	}
}
