package securestore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, a := range []securestore.AEAD{0, securestore.AES256GCM, securestore.XChaCha20Poly1305} {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			b := securestore.NewMemoryBackend()
			s := newStore(t, b, securestore.Config{AEAD: a})
			values := map[string][]byte{
				"empty":           {},
				"small":           []byte("hello"),
				"binary":          {0, 1, 2, 0xff, 0},
				"big":             bytes.Repeat([]byte("0123456789abcdef"), 1<<12),
				"unicode-ключ":    []byte("значение"),
				string([]byte{0}): []byte("nul key"),
			}
			for k, v := range values {
				require.NoError(t, s.Put(ctx, k, v))
			}
			for k, v := range values {
				got, err := s.Get(ctx, k)
				require.NoError(t, err, k)
				require.Equal(t, v, got, k)
			}
			_, err := s.Get(ctx, "absent")
			require.ErrorIs(t, err, securestore.ErrNotFound)

			keys, err := s.List(ctx, "")
			require.NoError(t, err)
			require.Equal(t, []string{"\x00", "big", "binary", "empty", "small", "unicode-ключ"}, keys)
			keys, err = s.List(ctx, "b")
			require.NoError(t, err)
			require.Equal(t, []string{"big", "binary"}, keys)

			require.NoError(t, s.Put(ctx, "small", []byte("replaced")))
			require.NoError(t, s.Delete(ctx, "binary"))
			require.NoError(t, s.Delete(ctx, "binary"), "deleting a missing key is not an error")
			_, err = s.Get(ctx, "binary")
			require.ErrorIs(t, err, securestore.ErrNotFound)

			// Reopen from the same backend: everything is still there.
			s2, err := securestore.Open(ctx, b, securestore.Passcode([]byte("correct horse")))
			require.NoError(t, err)
			got, err := s2.Get(ctx, "small")
			require.NoError(t, err)
			require.Equal(t, []byte("replaced"), got)
			want := a
			if want == 0 {
				want = securestore.AES256GCM
			}
			require.Equal(t, want, s2.KeyInfo().AEAD, "the cipher is a property of the store")

			// Nothing of keys or values shows in the backend.
			names, err := b.List(ctx, "")
			require.NoError(t, err)
			for _, n := range names {
				require.NotContains(t, n, "small")
				raw, err := b.Get(ctx, n)
				require.NoError(t, err)
				require.False(t, bytes.Contains(raw, []byte("replaced")), n)
				require.False(t, bytes.Contains(raw, []byte("small")), n)
			}
		})
	}
}

func TestKeyValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, securestore.NewMemoryBackend(), securestore.Config{})
	long := string(bytes.Repeat([]byte("k"), securestore.MaxKeyLen))
	require.NoError(t, s.Put(ctx, long, []byte("v")))
	got, err := s.Get(ctx, long)
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)
	for _, k := range []string{"", long + "k"} {
		require.ErrorIs(t, s.Put(ctx, k, []byte("v")), securestore.ErrInvalidKey)
		_, err := s.Get(ctx, k)
		require.ErrorIs(t, err, securestore.ErrInvalidKey)
		require.ErrorIs(t, s.Delete(ctx, k), securestore.ErrInvalidKey)
	}
	require.ErrorIs(t, s.Put(ctx, "huge", make([]byte, securestore.MaxValueSize+1)), securestore.ErrTooLarge)
}

func TestCreateAndOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	_, err := securestore.Open(ctx, b, securestore.Passcode([]byte("x")))
	require.ErrorIs(t, err, securestore.ErrNoStore)
	_, err = securestore.Create(ctx, b, securestore.KeySource{}, securestore.Config{Argon2: fastKDF})
	require.ErrorIs(t, err, securestore.ErrNoKeySource)
	_, err = securestore.Create(ctx, b, securestore.Passcode([]byte{}), securestore.Config{Argon2: fastKDF})
	require.ErrorIs(t, err, securestore.ErrEmptyPasscode)
	_, err = securestore.Create(ctx, b, securestore.Passcode([]byte("x")), securestore.Config{Argon2: fastKDF, AEAD: 9})
	require.ErrorIs(t, err, securestore.ErrUnknownAlgorithm)
	for _, p := range []securestore.Argon2Params{
		{Time: 17, MemoryKiB: fastKDF.MemoryKiB, Threads: 1},
		{Time: 1, MemoryKiB: 1024, Threads: 1},
		{Time: 1, MemoryKiB: 4 << 20, Threads: 1},
		{Time: 1, MemoryKiB: fastKDF.MemoryKiB, Threads: 17},
	} {
		_, err = securestore.Create(ctx, b, securestore.Passcode([]byte("x")), securestore.Config{Argon2: p})
		require.ErrorIs(t, err, securestore.ErrUnsafeParameters, "%+v", p)
	}
	names, err := b.List(ctx, "")
	require.NoError(t, err)
	require.Empty(t, names, "refused creates write nothing")

	newStore(t, b, securestore.Config{})
	_, err = securestore.Create(ctx, b, securestore.Passcode([]byte("x")), securestore.Config{Argon2: fastKDF})
	require.ErrorIs(t, err, securestore.ErrExists)
	_, err = securestore.Open(ctx, b, securestore.KeySource{})
	require.ErrorIs(t, err, securestore.ErrNoKeySource)
}

func TestWrongPasscode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	for _, wrong := range []string{"correct hors", "correct horse ", "Correct horse", "x"} {
		_, err := securestore.Open(ctx, b, securestore.Passcode([]byte(wrong)))
		require.ErrorIs(t, err, securestore.ErrWrongPasscode)
		require.Equal(t, securestore.ErrWrongPasscode.Error(), err.Error(), "no hint of how close the guess was")
	}
	_, err := securestore.Open(ctx, b, securestore.FromProvider(mustSealer(t)))
	require.ErrorIs(t, err, securestore.ErrWrongPasscode, "a provider cannot open a passcode store")
}

func TestChangePasscode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	before, err := b.Get(ctx, "header")
	require.NoError(t, err)

	require.ErrorIs(t, s.ChangePasscode(ctx, []byte("wrong"), []byte("new")), securestore.ErrWrongPasscode)
	require.ErrorIs(t, s.ChangePasscode(ctx, []byte("correct horse"), nil), securestore.ErrEmptyPasscode)
	after, err := b.Get(ctx, "header")
	require.NoError(t, err)
	require.Equal(t, before, after, "refused changes leave the header alone")

	require.NoError(t, s.ChangePasscode(ctx, []byte("correct horse"), []byte("battery staple")))
	// The open store keeps working, and writes after the change read back.
	require.NoError(t, s.Put(ctx, "k2", []byte("v2")))

	_, err = securestore.Open(ctx, b, securestore.Passcode([]byte("correct horse")))
	require.ErrorIs(t, err, securestore.ErrWrongPasscode)
	s2, err := securestore.Open(ctx, b, securestore.Passcode([]byte("battery staple")))
	require.NoError(t, err)
	for k, v := range map[string]string{"k": "v", "k2": "v2"} {
		got, err := s2.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, v, string(got))
	}
	require.Equal(t, fastKDF, s2.KeyInfo().Argon2, "the store keeps its cost")
}

func TestKeyProviderStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	kms := mustSealer(t)
	s, err := securestore.Create(ctx, b, securestore.FromProvider(kms), securestore.Config{})
	require.NoError(t, err)
	require.False(t, s.KeyInfo().Passcode)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))

	s2, err := securestore.Open(ctx, b, securestore.FromProvider(kms))
	require.NoError(t, err)
	got, err := s2.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)

	_, err = securestore.Open(ctx, b, securestore.FromProvider(mustSealer(t)))
	require.ErrorIs(t, err, securestore.ErrWrongPasscode, "another provider key cannot unwrap the store key")
	_, err = securestore.Open(ctx, b, securestore.Passcode([]byte("x")))
	require.ErrorIs(t, err, securestore.ErrWrongPasscode)

	failing := failingProvider{err: errors.New("kms unavailable")}
	_, err = securestore.Open(ctx, b, securestore.FromProvider(failing))
	require.ErrorIs(t, err, failing.err, "a provider outage is reported as itself, not as a wrong key")
	require.NotErrorIs(t, err, securestore.ErrWrongPasscode)

	// Move the store from the provider to a passcode and back.
	require.NoError(t, s2.ChangeKeySource(ctx, securestore.FromProvider(kms), securestore.Passcode([]byte("pin 1234"))))
	s3, err := securestore.Open(ctx, b, securestore.Passcode([]byte("pin 1234")))
	require.NoError(t, err)
	require.True(t, s3.KeyInfo().Passcode)
	require.Equal(t, securestore.Argon2Params{Time: securestore.DefaultArgon2Time, MemoryKiB: securestore.DefaultArgon2MemoryKiB, Threads: securestore.DefaultArgon2Threads}, s3.KeyInfo().Argon2)
	got, err = s3.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)
}

type failingProvider struct{ err error }

func (f failingProvider) Seal(context.Context, []byte, []byte) ([]byte, error) { return nil, f.err }
func (f failingProvider) Open(context.Context, []byte, []byte) ([]byte, error) { return nil, f.err }

func mustSealer(t *testing.T) *securestore.Sealer {
	t.Helper()
	s, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{securestore.GenerateSealerKey(1)}})
	require.NoError(t, err)
	return s
}

func TestRotateAndReencrypt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	c, err := s.Collection(ctx, "notes", "tag")
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, s.Put(ctx, fmt.Sprint("old-", i), []byte(fmt.Sprint("value-", i))))
		require.NoError(t, c.Put(ctx, fmt.Sprint("doc-", i), []byte(fmt.Sprintf(`{"tag":"t%d"}`, i%2))))
	}
	require.Equal(t, []uint32{1}, s.KeyInfo().Keys)

	id, err := s.RotateKey(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(2), id)
	require.Equal(t, securestore.KeyInfo{AEAD: securestore.AES256GCM, Current: 2, Keys: []uint32{1, 2}, Passcode: true, Argon2: fastKDF}, s.KeyInfo())
	require.NoError(t, s.Put(ctx, "new", []byte("under key 2")))

	// Old records stay readable, in this process and after reopening.
	s2, err := securestore.Open(ctx, b, securestore.Passcode([]byte("correct horse")))
	require.NoError(t, err)
	for _, st := range []*securestore.Store{s, s2} {
		got, err := st.Get(ctx, "old-3")
		require.NoError(t, err)
		require.Equal(t, []byte("value-3"), got)
		got, err = st.Get(ctx, "new")
		require.NoError(t, err)
		require.Equal(t, []byte("under key 2"), got)
	}
	require.Equal(t, map[uint32]int{1: 21, 2: 1}, keyIDs(t, b), "old records (and the collection's metadata) still under key 1")

	moved, err := s.Reencrypt(ctx)
	require.NoError(t, err)
	require.Equal(t, 21, moved, "10 values, 10 documents and the collection's metadata; the new value is already current")
	require.Equal(t, []uint32{2}, s.KeyInfo().Keys, "key 1 retired")
	require.Equal(t, map[uint32]int{2: 22}, keyIDs(t, b))

	s3, err := securestore.Open(ctx, b, securestore.Passcode([]byte("correct horse")))
	require.NoError(t, err)
	for i := range 10 {
		got, err := s3.Get(ctx, fmt.Sprint("old-", i))
		require.NoError(t, err)
		require.Equal(t, []byte(fmt.Sprint("value-", i)), got)
	}
	c3, err := s3.Collection(ctx, "notes", "tag")
	require.NoError(t, err)
	docs, err := c3.Find(ctx, securestore.Query{Match: []map[string]any{{"tag": "t1"}}})
	require.NoError(t, err)
	require.Len(t, docs, 5)

	moved, err = s.Reencrypt(ctx)
	require.NoError(t, err)
	require.Zero(t, moved, "a second pass has nothing to do")
}

// keyIDs counts the records (header excluded) under each data key id.
func keyIDs(t *testing.T, b securestore.Backend) map[uint32]int {
	t.Helper()
	names, err := b.List(context.Background(), "")
	require.NoError(t, err)
	out := map[uint32]int{}
	for _, n := range names {
		if n == "header" {
			continue
		}
		raw, err := b.Get(context.Background(), n)
		require.NoError(t, err)
		out[binary.BigEndian.Uint32(raw[2:6])]++
	}
	return out
}

func TestClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, securestore.NewMemoryBackend(), securestore.Config{})
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is fine")
	_, err := s.Get(ctx, "k")
	require.ErrorIs(t, err, securestore.ErrClosed)
	require.ErrorIs(t, s.Put(ctx, "k", nil), securestore.ErrClosed)
	_, err = s.List(ctx, "")
	require.ErrorIs(t, err, securestore.ErrClosed)
	_, err = s.RotateKey(ctx)
	require.ErrorIs(t, err, securestore.ErrClosed)
	_, err = s.Collection(ctx, "c")
	require.ErrorIs(t, err, securestore.ErrClosed)
}
