package attest_test

import (
	"testing"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/attest/attesttest"
)

func TestMemoryKeyStore(t *testing.T) {
	t.Parallel()
	attesttest.RunKeyStore(t, func(*testing.T) attest.KeyStore { return attest.NewMemoryKeyStore() })
}
