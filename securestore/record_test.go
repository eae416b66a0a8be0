package securestore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// onlyRecord returns the name of the single key-value record in b.
func onlyRecord(t *testing.T, b securestore.Backend) string {
	t.Helper()
	names, err := b.List(context.Background(), "k.")
	require.NoError(t, err)
	require.Len(t, names, 1)
	return names[0]
}

func TestCorruptRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, a := range []securestore.AEAD{securestore.AES256GCM, securestore.XChaCha20Poly1305} {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			b := securestore.NewMemoryBackend()
			s := newStore(t, b, securestore.Config{AEAD: a})
			require.NoError(t, s.Put(ctx, "k", []byte("a secret value")))
			name := onlyRecord(t, b)
			good, err := b.Get(ctx, name)
			require.NoError(t, err)

			check := func(what string, rec []byte) {
				t.Helper()
				require.NoError(t, b.Put(ctx, name, rec))
				got, err := s.Get(ctx, "k")
				require.ErrorIs(t, err, securestore.ErrCorruptRecord, what)
				require.Nil(t, got, what)
			}
			for _, n := range []int{0, 5, 23, 39} {
				rec := bytes.Repeat([]byte{1}, n)
				if n > 0 {
					rec = append(bytes.Clone(good[:min(n, len(good))]), rec[min(n, len(good)):]...)
				}
				check(fmt.Sprintf("record of %d bytes", n), rec)
				check("random record of length", bytes.Repeat([]byte{1}, n))
			}
			for i := range good {
				for _, bit := range []byte{0x01, 0x80} {
					rec := bytes.Clone(good)
					rec[i] ^= bit
					check("flipped byte", rec)
				}
			}
			check("truncated by one", good[:len(good)-1])
			check("one byte appended", append(bytes.Clone(good), 0))

			// A record moved under another key's name does not open there.
			require.NoError(t, b.Put(ctx, name, good))
			require.NoError(t, s.Put(ctx, "other", []byte("other value")))
			names, err := b.List(ctx, "k.")
			require.NoError(t, err)
			for _, n := range names {
				if n != name {
					require.NoError(t, b.Put(ctx, n, good))
				}
			}
			_, err = s.Get(ctx, "other")
			require.ErrorIs(t, err, securestore.ErrCorruptRecord, "records are bound to their names")

			// A record of another store with the same layout does not open.
			b2 := securestore.NewMemoryBackend()
			s2 := newStore(t, b2, securestore.Config{AEAD: a})
			require.NoError(t, s2.Put(ctx, "k", []byte("foreign")))
			foreign, err := b2.Get(ctx, onlyRecord(t, b2))
			require.NoError(t, err)
			check("foreign record", foreign)
		})
	}
}

func TestCorruptNamesFailList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	require.NoError(t, b.Put(ctx, "k.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", []byte("x")))
	_, err := s.List(ctx, "")
	require.ErrorIs(t, err, securestore.ErrCorruptRecord, "a name the store did not write fails closed")
}
