package auth_test

import (
	"testing"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/auth/authtest"
)

func TestMemoryClientsConformance(t *testing.T) {
	t.Parallel()
	authtest.RunClientStore(t, func(*testing.T) auth.ClientStore { return auth.NewMemoryClients() })
}
