package securestore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// fastKDF keeps tests quick: the cheapest parameters the bounds allow.
var fastKDF = securestore.Argon2Params{Time: 1, MemoryKiB: securestore.MinArgon2MemoryKiB, Threads: 1}

func newStore(t testing.TB, b securestore.Backend, cfg securestore.Config) *securestore.Store {
	t.Helper()
	if cfg.Argon2 == (securestore.Argon2Params{}) {
		cfg.Argon2 = fastKDF
	}
	s, err := securestore.Create(context.Background(), b, securestore.Passcode([]byte("correct horse")), cfg)
	require.NoError(t, err)
	return s
}
