package securestore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := securestore.NewUsers(t.TempDir())
	require.NoError(t, err)
	cfg := securestore.Config{Argon2: fastKDF}
	alice, err := u.Create(ctx, "alice", securestore.Passcode([]byte("alice pw")), cfg)
	require.NoError(t, err)
	bob, err := u.Create(ctx, "bob@example.com", securestore.Passcode([]byte("bob pw")), cfg)
	require.NoError(t, err)
	require.NoError(t, alice.Put(ctx, "k", []byte("alice's")))
	require.NoError(t, bob.Put(ctx, "k", []byte("bob's")))

	_, err = u.Create(ctx, "alice", securestore.Passcode([]byte("other")), cfg)
	require.ErrorIs(t, err, securestore.ErrExists)
	_, err = u.Open(ctx, "alice", securestore.Passcode([]byte("bob pw")))
	require.ErrorIs(t, err, securestore.ErrWrongPasscode, "each user has their own passcode")
	_, err = u.Open(ctx, "carol", securestore.Passcode([]byte("x")))
	require.ErrorIs(t, err, securestore.ErrNoStore)

	a2, err := u.Open(ctx, "alice", securestore.Passcode([]byte("alice pw")))
	require.NoError(t, err)
	got, err := a2.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("alice's"), got)

	users, err := u.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "bob@example.com"}, users)
	require.NoError(t, u.Remove(ctx, "alice"))
	require.NoError(t, u.Remove(ctx, "alice"))
	users, err = u.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"bob@example.com"}, users)

	for _, bad := range []string{"", strings.Repeat("u", securestore.MaxUserLen+1)} {
		_, err := u.Create(ctx, bad, securestore.Passcode([]byte("x")), cfg)
		require.ErrorIs(t, err, securestore.ErrInvalidKey)
	}
	long := strings.Repeat("u", securestore.MaxUserLen)
	_, err = u.Create(ctx, long, securestore.Passcode([]byte("x")), cfg)
	require.NoError(t, err, "the longest user name fits in a file name")
}
