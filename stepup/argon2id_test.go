package stepup_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/stepup"
)

// The reference implementation's test vector (phc-winner-argon2, test.c):
// Argon2id v=19, m=64 MiB, t=2, p=1, password "password", salt "somesalt".
const referenceHash = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

func TestArgon2idReferenceVector(t *testing.T) {
	t.Parallel()
	h := weakHasher(t)
	ok, rehash, err := h.Verify(context.Background(), referenceHash, "password")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, rehash, "other parameters than the hasher's")
	ok, _, err = h.Verify(context.Background(), referenceHash, "Password")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestPasswordHasherRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := weakHasher(t)
	enc, err := h.Hash(ctx, "correct horse")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$"))
	enc2, err := h.Hash(ctx, "correct horse")
	require.NoError(t, err)
	require.NotEqual(t, enc, enc2, "fresh salt each time")
	ok, rehash, err := h.Verify(ctx, enc, "correct horse")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)
	ok, _, err = h.Verify(ctx, enc, "correct horse ")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, h.VerifyUnknown(ctx, "anything"))
}

func TestPasswordHasherConfig(t *testing.T) {
	t.Parallel()
	_, err := stepup.NewPasswordHasher(stepup.HasherConfig{Params: stepup.Argon2idParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig, "weak parameters need InsecureWeakParams")
	_, err = stepup.NewPasswordHasher(stepup.HasherConfig{Params: stepup.Argon2idParams{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}, InsecureWeakParams: true})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
	_, err = stepup.NewPasswordHasher(stepup.HasherConfig{MaxConcurrent: -1})
	require.ErrorIs(t, err, stepup.ErrInvalidConfig)
}

func TestPasswordHasherBoundsStoredCost(t *testing.T) {
	t.Parallel()
	h := weakHasher(t)
	_, _, err := h.Verify(context.Background(), "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "x")
	require.ErrorIs(t, err, stepup.ErrInvalidHash, "a hash asking for 4 GiB is refused, not derived")
}

func TestPasswordHasherWaitsForSlot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h, err := stepup.NewPasswordHasher(stepup.HasherConfig{
		Params: stepup.Argon2idParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, InsecureWeakParams: true, MaxConcurrent: 1,
	})
	require.NoError(t, err)
	// With a cancelled context the hasher may still win the free slot;
	// either outcome is fine, but it must never panic or hang.
	_, _ = h.Hash(ctx, "x")
}

var malformedHashes = []string{
	"",
	"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
	"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=256$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$",
	"$argon2id$v=19$m=65536,t=2,p=1$$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$Q1RG",
	"$argon2id$v=19$m=99999999999,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"$argon2id$v=19$m=65536,t=2,p=1,x=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	"argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
}

func TestParseArgon2idHash(t *testing.T) {
	t.Parallel()
	p, salt, key, err := stepup.ParseArgon2idHash(referenceHash)
	require.NoError(t, err)
	require.Equal(t, stepup.Argon2idParams{Memory: 65536, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, p)
	require.Equal(t, "somesalt", string(salt))
	require.Len(t, key, 32)
	for _, s := range malformedHashes {
		_, _, _, err := stepup.ParseArgon2idHash(s)
		require.ErrorIs(t, err, stepup.ErrInvalidHash, s)
	}
}

func FuzzParseArgon2idHash(f *testing.F) {
	f.Add(referenceHash)
	for _, s := range malformedHashes {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := stepup.ParseArgon2idHash(s)
		if err != nil {
			return
		}
		// What parses is within bounds.
		require.LessOrEqual(t, p.Time, uint32(16))
		require.GreaterOrEqual(t, p.Threads, uint8(1))
		require.Len(t, salt, int(p.SaltLen))
		require.Len(t, key, int(p.KeyLen))
	})
}

// BenchmarkPasswordVerify measures one login's hashing with the default
// (OWASP) parameters; the baseline is a bare argon2.IDKey call through the
// hasher's parser-free path (Hash), so the figures read as overhead.
func BenchmarkPasswordVerify(b *testing.B) {
	ctx := context.Background()
	h, err := stepup.NewPasswordHasher(stepup.HasherConfig{})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h.Hash(ctx, "correct horse battery staple")
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = h.Verify(ctx, enc, "correct horse battery staple")
		}
	})
}
