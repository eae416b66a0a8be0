package stepuptest_test

import (
	"testing"

	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/stepup/stepuptest"
)

func TestMemoryOTPStore(t *testing.T) {
	t.Parallel()
	stepuptest.RunOTPStore(t, func(*testing.T) stepup.OTPStore { return stepup.NewMemoryOTPStore() })
}
