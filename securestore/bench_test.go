package securestore_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// benchName has the length of the backend name of "benchmark-key": the
// backend twins handle the same name length as the store.
var benchName = "k." + strings.Repeat("a", 47)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}}

// floorAEAD is the raw cipher the floor twins measure: AES-256-GCM, the
// store's default, with a fixed nonce (the floor includes no randomness).
func floorAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 32))
	require.NoError(b, err)
	c, err := cipher.NewGCM(block)
	require.NoError(b, err)
	return c
}

// BenchmarkPut measures Store.Put over the memory backend against two
// twins of the same size in the same run: aead-floor, the raw AES-256-GCM
// seal (output allocated, as Put's is), and backend, the memory backend's
// Put of a record of that size alone.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		value := make([]byte, sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.Run("store", func(b *testing.B) {
				s := newStore(b, securestore.NewMemoryBackend(), securestore.Config{})
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					if err := s.Put(ctx, "benchmark-key", value); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("aead-floor", func(b *testing.B) {
				c := floorAEAD(b)
				nonce := make([]byte, c.NonceSize())
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					_ = c.Seal(nil, nonce, value, nil)
				}
			})
			b.Run("backend", func(b *testing.B) {
				m := securestore.NewMemoryBackend()
				rec := make([]byte, sz.n+36)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					if err := m.Put(ctx, benchName, rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkGet is BenchmarkPut's reading twin: Store.Get against the raw
// AES-256-GCM open and the memory backend's Get.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		value := make([]byte, sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.Run("store", func(b *testing.B) {
				s := newStore(b, securestore.NewMemoryBackend(), securestore.Config{})
				require.NoError(b, s.Put(ctx, "benchmark-key", value))
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Get(ctx, "benchmark-key"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("aead-floor", func(b *testing.B) {
				c := floorAEAD(b)
				nonce := make([]byte, c.NonceSize())
				sealed := c.Seal(nil, nonce, value, nil)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Open(nil, nonce, sealed, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("backend", func(b *testing.B) {
				m := securestore.NewMemoryBackend()
				require.NoError(b, m.Put(ctx, benchName, make([]byte, sz.n+36)))
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Get(ctx, benchName); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkChangePasscode shows that a passcode change costs the same for
// 1,000 and 100,000 records: only the header is rewritten. It uses the
// cheapest Argon2id parameters, so the figure is mostly two derivations
// (the old passcode is checked, the new one derived). It runs over two
// backends: memory, whose records are objects the garbage collector marks
// during the 16 MiB of allocation each change makes, and offheap, which
// keeps records outside the collector's pointer graph as a file or
// database backend does, so the figure shows the store's own cost.
func BenchmarkChangePasscode(b *testing.B) {
	ctx := context.Background()
	for _, backend := range []struct {
		name string
		new  func() securestore.Backend
	}{
		{"memory", func() securestore.Backend { return securestore.NewMemoryBackend() }},
		{"offheap", func() securestore.Backend { return newArenaBackend() }},
	} {
		for _, n := range []int{1_000, 100_000} {
			s := newStore(b, backend.new(), securestore.Config{})
			value := make([]byte, 32)
			for i := range n {
				require.NoError(b, s.Put(ctx, fmt.Sprint("record-", i), value))
			}
			b.Run(fmt.Sprintf("%s/%d-records", backend.name, n), func(b *testing.B) {
				pcs := [2][]byte{[]byte("correct horse"), []byte("battery staple")}
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					if err := s.ChangePasscode(ctx, pcs[i%2], pcs[(i+1)%2]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if i%2 == 1 { // leave the store with its first passcode
					require.NoError(b, s.ChangePasscode(ctx, pcs[1], pcs[0]))
				}
			})
		}
	}
}

// arenaBackend keeps values in one append-only byte arena indexed by a
// hash of the name: nothing in it is a pointer for the garbage collector
// to follow. It serves benchmarks only (no List, hash collisions ignored).
type arenaBackend struct {
	mu    sync.Mutex
	seed  maphash.Seed
	arena []byte
	index map[uint64][2]int
}

func newArenaBackend() *arenaBackend {
	return &arenaBackend{seed: maphash.MakeSeed(), index: map[uint64][2]int{}}
}

func (a *arenaBackend) Get(_ context.Context, name string) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	span, ok := a.index[maphash.String(a.seed, name)]
	if !ok {
		return nil, securestore.ErrNotFound
	}
	return a.arena[span[0]:span[1]:span[1]], nil
}

func (a *arenaBackend) Put(_ context.Context, name string, value []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.arena)+len(value) > cap(a.arena) {
		a.arena = make([]byte, 0, 2*cap(a.arena)+len(value)+1<<20) // old values stay valid
	}
	start := len(a.arena)
	a.arena = append(a.arena, value...)
	a.index[maphash.String(a.seed, name)] = [2]int{start, len(a.arena)}
	return nil
}

func (a *arenaBackend) Delete(_ context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.index, maphash.String(a.seed, name))
	return nil
}

func (a *arenaBackend) List(context.Context, string) ([]string, error) {
	return nil, errors.New("arena backend: no List")
}
