package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/device/devicetest"
	"github.com/moatsec/moat/stepup"
)

// Tests beyond the conformance suites: limits the memory stores also
// enforce, and details of the SQL.

func TestDeviceAppsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).Devices()
	for i := range device.MaxAppsPerDevice {
		require.NoError(t, s.Seen(ctx, device.Sighting{DeviceID: "d", AppID: fmt.Sprintf("app-%03d", i), At: devicetest.T0}))
	}
	require.ErrorIs(t, s.Seen(ctx, device.Sighting{DeviceID: "d", AppID: "one-too-many", At: devicetest.T0}), device.ErrFull)
	require.NoError(t, s.Seen(ctx, device.Sighting{DeviceID: "d", AppID: "app-000", AppVersion: "2.0", At: devicetest.T0}), "known apps still update")
	d, err := s.Device(ctx, "d")
	require.NoError(t, err)
	require.Len(t, d.Apps, device.MaxAppsPerDevice)
	require.Equal(t, "2.0", d.Apps[0].AppVersion)
}

// TestDeviceConcurrentApps: concurrent first sightings of different apps
// on one (new) device lose none.
func TestDeviceConcurrentApps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).Devices()
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Seen(ctx, device.Sighting{DeviceID: "new", AppID: fmt.Sprintf("app-%02d", i), UserID: fmt.Sprintf("u%02d", i), At: devicetest.T0})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	d, err := s.Device(ctx, "new")
	require.NoError(t, err)
	require.Len(t, d.Apps, n)
	require.Len(t, d.Users, n)
}

// TestDeviceSortsBytewise: ids order as Go strings do, whatever the
// database's collation.
func TestDeviceSortsBytewise(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).Devices()
	ids := []string{"B", "a", "_x", "Z9", "é", "A-1", "a b"}
	for _, id := range ids {
		require.NoError(t, s.Seen(ctx, device.Sighting{DeviceID: id, DisplayName: "Ünïcode " + id, At: devicetest.T0}))
	}
	page, err := s.Search(ctx, device.Query{})
	require.NoError(t, err)
	var got []string
	for _, d := range page.Devices {
		got = append(got, d.ID)
	}
	require.Equal(t, []string{"A-1", "B", "Z9", "_x", "a", "a b", "é"}, got)
	page, err = s.Search(ctx, device.Query{Name: "üNÏCODE"})
	require.NoError(t, err)
	require.Len(t, page.Devices, len(ids), "case folding as strings.ToLower does it")
}

func TestRecoveryDuplicateDigests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).Recovery()
	d := sha256.Sum256([]byte("code"))
	require.NoError(t, s.Replace(ctx, "alice", [][]byte{d[:], d[:]}))
	require.NoError(t, s.Use(ctx, "alice", d[:]))
	n, err := s.Count(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, 1, n, "one use removes one copy, as in the memory store")
	require.NoError(t, s.Use(ctx, "alice", d[:]))
	require.ErrorIs(t, s.Use(ctx, "alice", d[:]), stepup.ErrNotFound)
}

func TestClientFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).Clients()
	c := &auth.Client{
		ID: "c1", AppID: "a", AppVersion: "1", Platform: "android", Channel: "watch", DeviceID: "d",
		Key: &jose.JSONWebKey{Key: []byte("not an EC key but a symmetric one"), KeyID: "kid", Algorithm: "HS256"}, KeyThumbprint: "jkt",
		RegisteredAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Attestation: map[string]string{"k": "v"},
		Confidential: true, SecretHash: "h", Scopes: []string{"s"},
	}
	require.NoError(t, s.CreateClient(ctx, c))
	got, err := s.Client(ctx, "c1")
	require.NoError(t, err)
	require.True(t, c.RegisteredAt.Equal(got.RegisteredAt), "JSON keeps nanoseconds")
	require.Equal(t, c.Key.KeyID, got.Key.KeyID)
	require.Equal(t, c.Key.Key, got.Key.Key)
	got.Key, c.Key = nil, nil
	got.RegisteredAt = c.RegisteredAt
	require.Equal(t, c, got)
	require.ErrorIs(t, s.CreateClient(ctx, &auth.Client{}), auth.ErrInvalidConfiguration)
	require.ErrorIs(t, s.CreateClient(ctx, nil), auth.ErrInvalidConfiguration)
}

// TestDeviceKeyWithoutKey: a record without a public key round-trips as
// one (as in the memory store).
func TestDeviceKeyWithoutKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{}).DeviceKeys()
	require.NoError(t, s.Put(ctx, stepup.DeviceKey{ClientID: "c", Subject: "s"}))
	got, err := s.Get(ctx, "c")
	require.NoError(t, err)
	require.Nil(t, got.PublicKey)
}

func TestNewNeedsAPool(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), nil, Config{})
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "moat/postgres: "))
	require.Error(t, Migrate(context.Background(), nil))
	require.Error(t, CheckSchema(context.Background(), nil))
}
