package auth

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The verified-token cache is bounded, serves no expired entry, makes room
// by dropping expired entries first, and is keyed by the token's SHA-256
// (it never holds the token itself).
func TestTokenCacheBoundedAndExpiryAware(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)

	c := newTokenCache(3)
	for i := range 100 {
		c.put(tokenKey(fmt.Sprint("token-", i)), &cachedToken{expires: now.Add(time.Hour)}, now)
		require.LessOrEqual(t, len(c.byID), 3, "after %d puts", i+1)
	}
	require.NotNil(t, c.get(tokenKey("token-99"), now), "the newest entry is kept")

	c = newTokenCache(2)
	c.put(tokenKey("short"), &cachedToken{expires: now.Add(time.Second)}, now)
	c.put(tokenKey("long"), &cachedToken{expires: now.Add(time.Hour)}, now)
	require.NotNil(t, c.get(tokenKey("short"), now))
	require.Nil(t, c.get(tokenKey("short"), now.Add(time.Second)), "an entry is not served at or after its expiry")
	c.put(tokenKey("new"), &cachedToken{expires: now.Add(time.Hour)}, now.Add(2*time.Second))
	require.Len(t, c.byID, 2)
	require.NotNil(t, c.get(tokenKey("long"), now.Add(2*time.Second)), "the expired entry made room, not the live one")
	require.NotNil(t, c.get(tokenKey("new"), now.Add(2*time.Second)))

	_, ok := c.byID[sha256.Sum256([]byte("long"))]
	require.True(t, ok, "keyed by the SHA-256 of the token")
}
