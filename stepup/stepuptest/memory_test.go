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

func TestMemoryRecoveryStore(t *testing.T) {
	t.Parallel()
	stepuptest.RunRecoveryStore(t, func(*testing.T) stepup.RecoveryStore { return stepup.NewMemoryRecoveryStore() })
}

func TestMemoryPINStore(t *testing.T) {
	t.Parallel()
	stepuptest.RunPINStore(t, func(*testing.T) stepup.PINStore { return stepup.NewMemoryPINStore() })
}

func TestMemoryDeviceKeyStore(t *testing.T) {
	t.Parallel()
	stepuptest.RunDeviceKeyStore(t, func(*testing.T) stepup.DeviceKeyStore { return stepup.NewMemoryDeviceKeyStore() })
}
