package postgres

import (
	"testing"
	"time"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/attest/attesttest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/auth/authtest"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/device/devicetest"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/stepup/stepuptest"
	"github.com/moatsec/moat/update"
	"github.com/moatsec/moat/update/updatetest"
)

// The core's conformance suites, unchanged. Each store they ask for lives
// in a fresh schema.

func TestClientStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	authtest.RunClientStore(t, func(t *testing.T) auth.ClientStore { return newTestStores(t, Config{}).Clients() })
}

func TestDeviceStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	devicetest.Run(t, devicetest.Harness{New: func(t *testing.T) device.Store { return newTestStores(t, Config{}).Devices() }})
}

func TestOTPStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	stepuptest.RunOTPStore(t, func(t *testing.T) stepup.OTPStore { return newTestStores(t, Config{}).OTP() })
}

func TestPINStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	stepuptest.RunPINStore(t, func(t *testing.T) stepup.PINStore { return newTestStores(t, Config{}).PINs() })
}

func TestRecoveryStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	stepuptest.RunRecoveryStore(t, func(t *testing.T) stepup.RecoveryStore { return newTestStores(t, Config{}).Recovery() })
}

func TestDeviceKeyStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	stepuptest.RunDeviceKeyStore(t, func(t *testing.T) stepup.DeviceKeyStore { return newTestStores(t, Config{}).DeviceKeys() })
}

func TestAttestKeyStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	attesttest.RunKeyStore(t, func(t *testing.T) attest.KeyStore { return newTestStores(t, Config{}).AttestKeys() })
}

func TestUpdateStoreConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	updatetest.Run(t, func(t *testing.T) update.Store { return newTestStores(t, Config{}).Updates() })
}

// TestKVConformance runs the kv suite on the server's clock: advance
// sleeps, so the suite's expiring keys live 200ms.
func TestKVConformance(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	kvtest.Run(t, kvtest.Harness{
		New: func(t *testing.T) (kv.Store, func(time.Duration)) {
			return newTestStores(t, Config{}).KV(), time.Sleep
		},
		TTL: 200 * time.Millisecond,
	})
}

// TestKVConformanceInjectedClock runs the kv suite again with
// Config.KVNow set to the suite's fake clock.
func TestKVConformanceInjectedClock(t *testing.T) {
	t.Parallel()
	adminPool(t) // skip (or fail) once, not in every subtest
	kvtest.Run(t, kvtest.Harness{
		New: func(t *testing.T) (kv.Store, func(time.Duration)) {
			clock := kvtest.NewClock()
			return newTestStores(t, Config{KVNow: clock.Now}).KV(), clock.Advance
		},
	})
}
