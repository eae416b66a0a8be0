package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/device/devicetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	devicetest.Run(t, devicetest.Harness{New: func(t *testing.T) device.Store {
		return device.NewMemory(device.MemoryConfig{})
	}})
}

func TestMemoryLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := devicetest.T0
	m := device.NewMemory(device.MemoryConfig{MaxDevices: 2, MaxAuditEntries: 3, MaxPolicies: 1})
	require.NoError(t, m.Seen(ctx, device.Sighting{DeviceID: "a", At: at}))
	require.NoError(t, m.Seen(ctx, device.Sighting{DeviceID: "b", At: at}))
	require.ErrorIs(t, m.Seen(ctx, device.Sighting{DeviceID: "c", At: at}), device.ErrFull)
	require.NoError(t, m.Seen(ctx, device.Sighting{DeviceID: "a", UserID: "u", At: at}), "known devices still update")

	for i := range 5 {
		_, err := m.SetStatus(ctx, device.StatusChange{DeviceID: "a", Status: device.Lost, Actor: "op", Reason: "r", At: at.Add(time.Duration(i) * time.Second)})
		require.NoError(t, err)
	}
	entries, err := m.Audit(ctx, device.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, entries, 3, "the oldest entries are dropped")
	require.Equal(t, uint64(5), entries[0].Seq)

	_, err = m.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "x", Platform: "ios"}, Actor: "op", Reason: "r", At: at})
	require.NoError(t, err)
	_, err = m.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "x", Platform: "ios", MinVersion: "1.0"}, Actor: "op", Reason: "r", At: at})
	require.NoError(t, err, "replacing is not growing")
	_, err = m.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "y", Platform: "ios"}, Actor: "op", Reason: "r", At: at})
	require.ErrorIs(t, err, device.ErrFull)

	for i := range device.MaxAppsPerDevice {
		require.NoError(t, m.Seen(ctx, device.Sighting{DeviceID: "b", AppID: string(rune('A'+i%26)) + time.Duration(i).String(), At: at}))
	}
	require.ErrorIs(t, m.Seen(ctx, device.Sighting{DeviceID: "b", AppID: "one-too-many", At: at}), device.ErrFull)
}
