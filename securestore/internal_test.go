package securestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// passcodeHeader builds a well-formed header (valid checksum) claiming p,
// with a keyring that nothing can open.
func passcodeHeader(p Argon2Params) []byte {
	h := &header{source: sourcePasscode, argon2: p, salt: bytes.Repeat([]byte{7}, 32)}
	raw, err := marshalHeader(h, func([]byte) ([]byte, error) { return make([]byte, 40), nil })
	if err != nil {
		panic(err)
	}
	return raw
}

func TestHeaderParametersRefusedBeforeAllocation(t *testing.T) {
	// Not parallel: it measures the bytes this goroutine allocates.
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    Argon2Params
	}{
		{"memory 4 GiB", Argon2Params{Time: 3, MemoryKiB: 4 << 20, Threads: 4}},
		{"memory max uint32", Argon2Params{Time: 3, MemoryKiB: ^uint32(0), Threads: 4}},
		{"time 0", Argon2Params{Time: 0, MemoryKiB: 64 << 10, Threads: 4}},
		{"time 1e9", Argon2Params{Time: 1e9, MemoryKiB: 64 << 10, Threads: 4}},
		{"threads 0", Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 0}},
		{"threads 255", Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 255}},
		{"memory 1 KiB", Argon2Params{Time: 3, MemoryKiB: 1, Threads: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewMemoryBackend()
			require.NoError(t, b.Put(ctx, headerName, passcodeHeader(tc.p)))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Open(ctx, b, Passcode([]byte("anything")))
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, ErrUnsafeParameters)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "refused before the derivation allocated its memory")
		})
	}
}

func TestCorruptHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := NewMemoryBackend()
	s, err := Create(ctx, b, Passcode([]byte("pw")), Config{Argon2: Argon2Params{Time: 1, MemoryKiB: MinArgon2MemoryKiB, Threads: 1}})
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	good, err := b.Get(ctx, headerName)
	require.NoError(t, err)

	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		require.NoError(t, b.Put(ctx, headerName, bad))
		_, err := Open(ctx, b, Passcode([]byte("pw")))
		require.ErrorIs(t, err, ErrCorruptHeader, "byte %d", i)
	}
	for _, n := range []int{0, 1, 5, 39, len(good) - 1} {
		require.NoError(t, b.Put(ctx, headerName, good[:n]))
		_, err := Open(ctx, b, Passcode([]byte("pw")))
		require.ErrorIs(t, err, ErrCorruptHeader, "truncated to %d", n)
	}
	// A keyring altered with the checksum fixed up fails authentication:
	// that is indistinguishable from a wrong passcode, and says so.
	bad := bytes.Clone(good)
	bad[len(bad)-checksumSize-1] ^= 1
	sum := sha256.Sum256(bad[:len(bad)-checksumSize])
	copy(bad[len(bad)-checksumSize:], sum[:])
	require.NoError(t, b.Put(ctx, headerName, bad))
	_, err = Open(ctx, b, Passcode([]byte("pw")))
	require.ErrorIs(t, err, ErrWrongPasscode)
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	k := &keyringData{aead: AES256GCM, nameKey: make([]byte, 32), indexKey: make([]byte, 32), current: 2,
		keys: []dataKey{{1, make([]byte, 32)}, {2, make([]byte, 32)}}}
	good := k.marshal()
	got, err := parseKeyring(good)
	require.NoError(t, err)
	require.Equal(t, k, got)
	for name, mutate := range map[string]func([]byte) []byte{
		"truncated":       func(b []byte) []byte { return b[:len(b)-1] },
		"version":         func(b []byte) []byte { b[0] = 2; return b },
		"current missing": func(b []byte) []byte { binary.BigEndian.PutUint32(b[66:], 3); return b },
		"zero count":      func(b []byte) []byte { binary.BigEndian.PutUint16(b[70:], 0); return b[:keyringFixed] },
		"duplicate id":    func(b []byte) []byte { binary.BigEndian.PutUint32(b[keyringFixed+keyringEntry:], 1); return b },
		"id zero":         func(b []byte) []byte { binary.BigEndian.PutUint32(b[keyringFixed:], 0); return b },
	} {
		_, err := parseKeyring(mutate(bytes.Clone(good)))
		require.ErrorIs(t, err, ErrCorruptHeader, name)
	}
	bad := bytes.Clone(good)
	bad[1] = 9
	_, err = parseKeyring(bad)
	require.ErrorIs(t, err, ErrUnknownAlgorithm)
}

func TestWeightedSemaphore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWeighted(10)
	require.NoError(t, w.acquire(ctx, 6))
	got := make(chan struct{})
	go func() {
		if w.acquire(ctx, 6) == nil {
			close(got)
		}
	}()
	select {
	case <-got:
		t.Fatal("acquired beyond the budget")
	case <-time.After(20 * time.Millisecond):
	}
	// A small request behind a waiting large one waits too (FIFO), and
	// gives up with its context.
	cctx, cancel := context.WithCancel(ctx)
	small := make(chan error, 1)
	go func() { small <- w.acquire(cctx, 1) }()
	cancel()
	require.ErrorIs(t, <-small, context.Canceled)
	w.release(6)
	<-got
	w.release(6)
	require.Error(t, w.acquire(ctx, 11), "a request above the budget can never be served")
	require.NoError(t, w.acquire(ctx, 10))
	w.release(10)
}

// TestDerivationsWaitForMemory holds the whole Argon2id memory budget and
// checks that an Open waits for it (and gives up with its context)
// instead of allocating. Not parallel: it blocks every derivation while
// it holds the budget.
func TestDerivationsWaitForMemory(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBackend()
	_, err := Create(ctx, b, Passcode([]byte("pw")), Config{Argon2: Argon2Params{Time: 1, MemoryKiB: MinArgon2MemoryKiB, Threads: 1}})
	require.NoError(t, err)

	require.NoError(t, argon2Limiter.acquire(ctx, Argon2MemoryBudgetKiB))
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = Open(tctx, b, Passcode([]byte("pw")))
	require.ErrorIs(t, err, context.DeadlineExceeded, "the derivation waited for memory")

	opened := make(chan error, 1)
	go func() {
		_, err := Open(ctx, b, Passcode([]byte("pw")))
		opened <- err
	}()
	argon2Limiter.release(Argon2MemoryBudgetKiB)
	require.NoError(t, <-opened, "and runs once memory is free")
}
