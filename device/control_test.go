package device_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
)

const (
	app      = "com.example.travel"
	platform = "ios"
)

// fixture is a Control over a memory store with a fake clock.
type fixture struct {
	ctl   *device.Control
	store *flakyStore
	kv    *kv.Memory
	clock *kvtest.Clock
}

func newFixture(t *testing.T, tweak ...func(*device.Config)) *fixture {
	t.Helper()
	clock := kvtest.NewClock()
	f := &fixture{store: &flakyStore{Store: device.NewMemory(device.MemoryConfig{})}, kv: kv.NewMemory(kv.MemoryConfig{Now: clock.Now}), clock: clock}
	cfg := device.Config{Store: f.store, KV: f.kv, Now: clock.Now, Logger: quiet}
	for _, fn := range tweak {
		fn(&cfg)
	}
	ctl, err := device.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ctl.Close() })
	f.ctl = ctl
	return f
}

// client registers a client on dev and returns it.
func (f *fixture) client(t *testing.T, dev, version string) device.Client {
	t.Helper()
	c := device.Client{DeviceID: dev, AppID: app, Platform: platform, AppVersion: version, ClientID: "client-" + dev}
	require.NoError(t, f.ctl.Register(context.Background(), c, device.Info{UserID: "ana"}))
	f.clock.Advance(time.Second)
	return c
}

func (f *fixture) setPolicy(t *testing.T, p device.Policy) {
	t.Helper()
	p.AppID, p.Platform = app, platform
	_, err := f.ctl.SetPolicy(context.Background(), device.PolicyChange{Policy: p, Actor: "ops", Reason: "test"})
	require.NoError(t, err)
}

// flakyStore fails reads or writes on demand and counts status reads.
type flakyStore struct {
	device.Store
	failReads  atomic.Bool
	failWrites atomic.Bool
	stateReads atomic.Int64
}

var errStoreDown = errors.New("store down")

var quiet = slog.New(slog.DiscardHandler)

func (s *flakyStore) State(ctx context.Context, d, a string) (device.State, error) {
	s.stateReads.Add(1)
	if s.failReads.Load() {
		return device.State{}, errStoreDown
	}
	return s.Store.State(ctx, d, a)
}

func (s *flakyStore) Policy(ctx context.Context, a, p string) (device.Policy, error) {
	if s.failReads.Load() {
		return device.Policy{}, errStoreDown
	}
	return s.Store.Policy(ctx, a, p)
}

func (s *flakyStore) Seen(ctx context.Context, sg device.Sighting) error {
	if s.failWrites.Load() {
		return errStoreDown
	}
	return s.Store.Seen(ctx, sg)
}

func requireRefused(t *testing.T, err error, code string) *device.Refusal {
	t.Helper()
	var r *device.Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, code, r.Code)
	require.Equal(t, 403, r.Status)
	return r
}

func TestNewRequiresStores(t *testing.T) {
	t.Parallel()
	_, err := device.New(device.Config{KV: kv.NewMemory(kv.MemoryConfig{})})
	require.ErrorContains(t, err, "Store is required")
	_, err = device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{})})
	require.ErrorContains(t, err, "KV is required")
	_, err = device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{}),
		DeviceMessage: "x", DeviceTranslations: map[string]string{"not a tag": "y"}})
	require.ErrorContains(t, err, "not a language tag")
}

// The policy table of issues 2 and 4: minimum 1.10.0.
func TestPolicyTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		allowed bool
		why     string
	}{
		{"1.9.1", false, "below the minimum"},
		{"1.10.0", true, "the minimum itself"},
		{"1.10", true, "two parts: 1.10 is 1.10.0"},
		{"1.x", false, "malformed: below every minimum"},
		{"", false, "empty: below every minimum"},
		{"v1.10.0", false, "a v prefix is not semver: malformed"},
		{"1.10.0-beta.1", false, "a pre-release is below its release"},
		{"1.10.1", true, "above"},
		{"1.9.10", false, "numeric, not textual, order"},
		{"1.10.0+build.7", true, "build metadata does not count"},
		{"1.11-rc.1", true, "a pre-release of a later version"},
		{"1.10.0.1", false, "four parts: malformed"},
		{"2.0.0", true, "above"},
		{"1.12.3", false, "listed in blocked_versions"},
		{"1.12.3+5", false, "listed, build metadata ignored"},
		{"1.12.4", true, "next to a listed version"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.setPolicy(t, device.Policy{MinVersion: "1.10.0", BlockedVersions: []string{"1.12.3"}, Message: "Update", DownloadURL: "https://apps.apple.com/app/id1"})
			c := f.client(t, "dev", "1.10.0")
			c.AppVersion = tc.version
			_, err := f.ctl.Check(context.Background(), c)
			if tc.allowed {
				require.NoError(t, err, tc.why)
				return
			}
			r := requireRefused(t, err, device.CodeAppVersionBlocked)
			require.Equal(t, "Update", r.Message)
			require.Equal(t, "https://apps.apple.com/app/id1", r.DownloadURL)
			require.Equal(t, map[string]any{"message": "Update", "download_url": "https://apps.apple.com/app/id1"}, r.Extra())
		})
	}
}

func TestBlockedListBlocksEvenWhenNotifying(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.setPolicy(t, device.Policy{MinVersion: "2.0", Action: device.Notify, BlockedVersions: []string{"1.9.3"}})
	c := f.client(t, "dev", "1.9.4")
	c.AppVersion = "1.9.3"
	_, err := f.ctl.Check(context.Background(), c)
	requireRefused(t, err, device.CodeAppVersionBlocked)
	requireRefused(t, f.ctl.Register(context.Background(), c, device.Info{}), device.CodeAppVersionBlocked)
	c.AppVersion = "1.9.4"
	n, err := f.ctl.Check(context.Background(), c)
	require.NoError(t, err)
	require.NotNil(t, n)
}

func TestNoPolicyOrNoMinimum(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.client(t, "dev", "garbage")
	n, err := f.ctl.Check(context.Background(), c)
	require.NoError(t, err, "no policy: nothing to enforce")
	require.Nil(t, n)
	f.setPolicy(t, device.Policy{BlockedVersions: []string{"1.0.0"}})
	_, err = f.ctl.Check(context.Background(), c)
	require.NoError(t, err, "no minimum: a malformed version is below nothing")
}

func TestNotifyShownOncePerClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.setPolicy(t, device.Policy{
		MinVersion: "1.10.0", Action: device.Notify, Message: "A new version is available",
		Translations: map[string]string{"fr": "Une nouvelle version est disponible"}, DownloadURL: "https://apps.apple.com/app/id1",
	})
	a := f.client(t, "dev-a", "1.9.0")
	a.AcceptLanguage = "fr-CA, en;q=0.5"
	b := f.client(t, "dev-b", "1.9.0")

	n, err := f.ctl.Check(ctx, a)
	require.NoError(t, err)
	require.Equal(t, &device.Notice{Message: "Une nouvelle version est disponible", DownloadURL: "https://apps.apple.com/app/id1", MinVersion: "1.10.0"}, n)
	for range 3 {
		n, err = f.ctl.Check(ctx, a)
		require.NoError(t, err)
		require.Nil(t, n, "shown once")
	}
	require.NoError(t, f.ctl.Allow(ctx, b), "Allow never shows (nor uses up) a notice")
	n, err = f.ctl.Check(ctx, b)
	require.NoError(t, err)
	require.Equal(t, "A new version is available", n.Message, "another client gets its own")

	// Another instance sharing the KV does not show it again.
	other, err := device.New(device.Config{Store: f.store, KV: f.kv, Now: f.clock.Now, Logger: quiet})
	require.NoError(t, err)
	defer other.Close()
	n, err = other.Check(ctx, a)
	require.NoError(t, err)
	require.Nil(t, n)

	// A changed policy is a new notice.
	f.clock.Advance(time.Minute)
	f.setPolicy(t, device.Policy{MinVersion: "1.11.0", Action: device.Notify, Message: "Update again"})
	n, err = f.ctl.Check(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "Update again", n.Message)

	// Then the operator blocks.
	f.setPolicy(t, device.Policy{MinVersion: "1.11.0", Action: device.Block, Message: "Update required"})
	_, err = f.ctl.Check(ctx, a)
	r := requireRefused(t, err, device.CodeAppVersionBlocked)
	require.Equal(t, "Update required", r.Message)
}

func TestNotifyWithoutClientIDEveryTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.setPolicy(t, device.Policy{MinVersion: "2.0", Action: device.Notify})
	c := f.client(t, "dev", "1.0")
	c.ClientID = ""
	for range 2 {
		n, err := f.ctl.Check(context.Background(), c)
		require.NoError(t, err)
		require.NotNil(t, n)
	}
}

func TestNotifyKVErrorFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.KV = failingKV{c.KV} })
	f.setPolicy(t, device.Policy{MinVersion: "2.0", Action: device.Notify})
	c := f.client(t, "dev", "1.0")
	_, err := f.ctl.Check(context.Background(), c)
	require.ErrorIs(t, err, errStoreDown)
	var r *device.Refusal
	require.False(t, errors.As(err, &r), "a store error is not a refusal")
}

type failingKV struct{ kv.Store }

func (failingKV) CompareAndSet(context.Context, string, []byte, time.Duration, uint64) (uint64, error) {
	return 0, errStoreDown
}

func TestAttestedVersionCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.setPolicy(t, device.Policy{MinVersion: "1.10.0", MinVersionCode: 42, BlockedVersionCodes: []int64{50}})
	c := f.client(t, "dev", "9.9.9")
	for _, tc := range []struct {
		claimed string
		code    int64
		allowed bool
	}{
		{"9.9.9", 41, false},  // the attested code wins over a flattering claim
		{"1.0.0", 42, true},   // and over an unflattering one
		{"garbage", 43, true}, // the claim is not consulted
		{"9.9.9", 50, false},  // listed code
		{"9.9.9", 0, true},    // no attestation: the claim decides
		{"1.9.0", 0, false},
	} {
		c.AppVersion, c.AttestedVersionCode = tc.claimed, tc.code
		_, err := f.ctl.Check(ctx, c)
		if tc.allowed {
			require.NoError(t, err, "%+v", tc)
		} else {
			requireRefused(t, err, device.CodeAppVersionBlocked)
		}
	}
	// A policy without code rules uses the claim even when a code is attested.
	f.setPolicy(t, device.Policy{MinVersion: "1.10.0"})
	c.AppVersion, c.AttestedVersionCode = "1.9.0", 99
	_, err := f.ctl.Check(ctx, c)
	requireRefused(t, err, device.CodeAppVersionBlocked)
}

func TestStolenDeviceBlockedAtOnceAndRestored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.CacheTTL = time.Hour })
	ctx := context.Background()
	c := f.client(t, "dev", "1.10.0")
	other := f.client(t, "dev-other", "1.10.0")
	_, err := f.ctl.Check(ctx, c)
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, other)
	require.NoError(t, err) // both cached for an hour

	e, err := f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Stolen, Actor: "alice@ops", Reason: "owner reported theft"})
	require.NoError(t, err)
	require.Equal(t, f.clock.Now(), e.At, "At defaults to the clock")
	_, err = f.ctl.Check(ctx, c)
	r := requireRefused(t, err, device.CodeDeviceBlocked)
	require.Equal(t, "device status is stolen", r.Description)
	require.Equal(t, device.DefaultDeviceMessage, r.Message)
	requireRefused(t, f.ctl.Allow(ctx, c), device.CodeDeviceBlocked)
	_, err = f.ctl.Check(ctx, other)
	require.NoError(t, err, "other devices are not affected")

	// A fresh registration from the stolen device is refused too.
	requireRefused(t, f.ctl.Register(ctx, device.Client{DeviceID: "dev", AppID: app, Platform: platform, AppVersion: "1.10.0"}, device.Info{}), device.CodeDeviceBlocked)

	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Active, Actor: "bob@ops", Reason: "recovered"})
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, c)
	require.NoError(t, err, "restoring lets it in again")

	entries, err := f.ctl.Audit(ctx, device.AuditQuery{DeviceID: "dev"})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "bob@ops", entries[0].Actor)
	require.Equal(t, device.Active, entries[0].To)
	require.Equal(t, "alice@ops", entries[1].Actor)
	require.Equal(t, "owner reported theft", entries[1].Reason)
	require.Equal(t, device.Stolen, entries[1].To)
}

func TestDeviceStatuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, st := range []device.Status{device.Lost, device.Stolen, device.Disabled} {
		f := newFixture(t, func(c *device.Config) {
			c.DeviceMessage = "Device blocked"
			c.DeviceTranslations = map[string]string{"de": "Gerät gesperrt"}
		})
		c := f.client(t, "dev", "1.0")
		c.AcceptLanguage = "de-AT"
		_, err := f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: st, Actor: "op", Reason: "r"})
		require.NoError(t, err)
		_, err = f.ctl.Check(ctx, c)
		r := requireRefused(t, err, device.CodeDeviceBlocked)
		require.Equal(t, "Gerät gesperrt", r.Message)
		require.Empty(t, r.DownloadURL)
	}
}

func TestAppDisabledOnDevice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	wallet := c
	wallet.AppID = "com.example.wallet"
	require.NoError(t, f.ctl.Register(ctx, wallet, device.Info{}))
	_, err := f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", AppID: app, Status: device.Disabled, Actor: "op", Reason: "abuse"})
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, c)
	r := requireRefused(t, err, device.CodeDeviceBlocked)
	require.Equal(t, "app is disabled on this device", r.Description)
	_, err = f.ctl.Check(ctx, wallet)
	require.NoError(t, err, "other apps on the device go on")
	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", AppID: app, Status: device.Stolen, Actor: "op", Reason: "r"})
	require.ErrorIs(t, err, device.ErrInvalid)
}

func TestUnknownAndMissingDevice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.ctl.Check(ctx, device.Client{DeviceID: "never-registered", AppID: app})
	r := requireRefused(t, err, device.CodeDeviceBlocked)
	require.Equal(t, "device is not registered; register again", r.Description)
	_, err = f.ctl.Check(ctx, device.Client{AppID: app})
	requireRefused(t, err, device.CodeDeviceBlocked)
	requireRefused(t, f.ctl.Register(ctx, device.Client{AppID: app}, device.Info{}), device.CodeDeviceBlocked)

	// Registering after a refusal was cached is seen at once.
	c := f.client(t, "never-registered", "1.0")
	_, err = f.ctl.Check(ctx, c)
	require.NoError(t, err)
}

func TestRegisterInvalidInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	err := f.ctl.Register(context.Background(), device.Client{DeviceID: "dev", AppID: "a\x00b"}, device.Info{})
	var r *device.Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, 400, r.Status)
	require.Equal(t, "invalid_request", r.Code)
	require.Equal(t, "app id contains a control character", r.Description)
}

func TestUnregister(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.CacheTTL = time.Hour })
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	_, err := f.ctl.Check(ctx, c)
	require.NoError(t, err)
	_, err = f.ctl.Unregister(ctx, device.Unregistration{DeviceID: "dev", Actor: "op", Reason: "user left"})
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, c)
	r := requireRefused(t, err, device.CodeDeviceBlocked)
	require.Contains(t, r.Description, "register again")

	// The app registers again: a new record, and it goes on.
	fresh := f.client(t, "dev", "1.0")
	_, err = f.ctl.Check(ctx, fresh)
	require.NoError(t, err)
	d, err := f.ctl.Device(ctx, "dev")
	require.NoError(t, err)
	require.Equal(t, []string{"ana"}, d.Users)

	// A blocked device cannot be unregistered.
	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Stolen, Actor: "op", Reason: "stolen"})
	require.NoError(t, err)
	_, err = f.ctl.Unregister(ctx, device.Unregistration{DeviceID: "dev", Actor: "op", Reason: "cleanup"})
	require.ErrorIs(t, err, device.ErrBlocked)
	_, err = f.ctl.Check(ctx, fresh)
	requireRefused(t, err, device.CodeDeviceBlocked)
}

func TestStoreErrorsFailClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.CacheTTL = -1 })
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	f.store.failReads.Store(true)
	_, err := f.ctl.Check(ctx, c)
	require.ErrorIs(t, err, errStoreDown)
	require.ErrorIs(t, f.ctl.Allow(ctx, c), errStoreDown)
	f.store.failReads.Store(false)
	f.store.failWrites.Store(true)
	require.ErrorIs(t, f.ctl.Register(ctx, device.Client{DeviceID: "dev2", AppID: app}, device.Info{}), errStoreDown)
}

func TestStoredPolicyInvalidFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.client(t, "dev", "1.0")
	f.store.Store = badPolicyStore{f.store.Store}
	f.clock.Advance(device.DefaultCacheTTL)
	_, err := f.ctl.Check(context.Background(), c)
	require.ErrorIs(t, err, device.ErrInvalidPolicy)
}

type badPolicyStore struct{ device.Store }

func (badPolicyStore) Policy(context.Context, string, string) (device.Policy, error) {
	return device.Policy{AppID: app, Platform: platform, MinVersion: "1.x"}, nil
}

func TestCacheServesReadsAndExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.CacheTTL = 2 * time.Second })
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	f.clock.Advance(2 * time.Second) // past what registering cached
	before := f.store.stateReads.Load()
	for range 10 {
		_, err := f.ctl.Check(ctx, c)
		require.NoError(t, err)
	}
	require.Equal(t, before+1, f.store.stateReads.Load(), "one read, nine cache hits")
	f.clock.Advance(2 * time.Second)
	_, err := f.ctl.Check(ctx, c)
	require.NoError(t, err)
	require.Equal(t, before+2, f.store.stateReads.Load(), "expired entries are read again")

	// A change made behind the Control's back shows after the TTL.
	_, err = f.store.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Lost, Actor: "op", Reason: "r", At: f.clock.Now()})
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, c)
	require.NoError(t, err)
	f.clock.Advance(2 * time.Second)
	_, err = f.ctl.Check(ctx, c)
	requireRefused(t, err, device.CodeDeviceBlocked)
}

// Two instances sharing a store and an Invalidator: a change made through
// one blocks on the next request at the other.
func TestInvalidationReachesOtherInstances(t *testing.T) {
	t.Parallel()
	inv := &device.LocalInvalidator{}
	f := newFixture(t, func(c *device.Config) { c.Invalidator = inv; c.CacheTTL = time.Hour })
	other, err := device.New(device.Config{Store: f.store, KV: f.kv, Now: f.clock.Now, Invalidator: inv, CacheTTL: time.Hour, Logger: quiet})
	require.NoError(t, err)
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	_, err = other.Check(ctx, c)
	require.NoError(t, err)

	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Lost, Actor: "op", Reason: "r"})
	require.NoError(t, err)
	_, err = other.Check(ctx, c)
	requireRefused(t, err, device.CodeDeviceBlocked)

	f.setPolicy(t, device.Policy{MinVersion: "2.0"})
	_, err = f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Active, Actor: "op", Reason: "r"})
	require.NoError(t, err)
	_, err = other.Check(ctx, c)
	requireRefused(t, err, device.CodeAppVersionBlocked)

	// After Close, the instance no longer listens (and keeps its cache).
	require.NoError(t, other.Close())
	require.NoError(t, other.Close(), "Close twice is fine")
	_, err = f.ctl.DeletePolicy(ctx, device.PolicyRemoval{AppID: app, Platform: platform, Actor: "op", Reason: "r"})
	require.NoError(t, err)
	_, err = other.Check(ctx, c)
	requireRefused(t, err, device.CodeAppVersionBlocked)
	_, err = f.ctl.Check(ctx, c)
	require.NoError(t, err)
}

func TestInvalidateAll(t *testing.T) {
	t.Parallel()
	inv := &device.LocalInvalidator{}
	f := newFixture(t, func(c *device.Config) { c.Invalidator = inv; c.CacheTTL = time.Hour })
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	_, err := f.ctl.Check(ctx, c)
	require.NoError(t, err)
	_, err = f.store.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Lost, Actor: "op", Reason: "r", At: f.clock.Now()})
	require.NoError(t, err)
	_, err = f.ctl.Check(ctx, c)
	require.NoError(t, err, "cached")
	require.NoError(t, inv.Publish(ctx, device.Invalidation{All: true}))
	_, err = f.ctl.Check(ctx, c)
	requireRefused(t, err, device.CodeDeviceBlocked)
}

type brokenInvalidator struct{ device.LocalInvalidator }

func (*brokenInvalidator) Publish(context.Context, device.Invalidation) error { return errStoreDown }

func TestNotPropagated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.Invalidator = &brokenInvalidator{} })
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	_, err := f.ctl.Check(ctx, c)
	require.NoError(t, err)
	e, err := f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Lost, Actor: "op", Reason: "r"})
	require.ErrorIs(t, err, device.ErrNotPropagated)
	require.NotZero(t, e.Seq, "the change is stored")
	_, err = f.ctl.Check(ctx, c)
	requireRefused(t, err, device.CodeDeviceBlocked)
}

// A fill that raced with an invalidation must not put the old state back
// into the cache.
func TestInvalidationRacingAFill(t *testing.T) {
	t.Parallel()
	gate := &gatedStore{Store: device.NewMemory(device.MemoryConfig{}), reading: make(chan struct{}), release: make(chan struct{})}
	clock := kvtest.NewClock()
	ctl, err := device.New(device.Config{Store: gate, KV: kv.NewMemory(kv.MemoryConfig{}), Now: clock.Now, CacheTTL: time.Hour, Logger: quiet})
	require.NoError(t, err)
	defer ctl.Close()
	ctx := context.Background()
	c := device.Client{DeviceID: "dev", AppID: app, Platform: platform, AppVersion: "1.0"}
	require.NoError(t, ctl.Register(ctx, c, device.Info{}))
	// Drop what Register cached.
	_, err = ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", AppID: app, Status: device.Active, Actor: "op", Reason: "flush"})
	require.NoError(t, err)

	gate.hold.Store(true)
	done := make(chan error)
	go func() { _, err := ctl.Check(ctx, c); done <- err }()
	<-gate.reading // the check read "active" and is about to fill the cache
	gate.hold.Store(false)
	_, err = ctl.SetStatus(ctx, device.StatusChange{DeviceID: "dev", Status: device.Stolen, Actor: "op", Reason: "r"})
	require.NoError(t, err)
	close(gate.release)
	require.NoError(t, <-done, "the racing check itself saw the old state")
	_, err = ctl.Check(ctx, c)
	requireRefused(t, err, device.CodeDeviceBlocked)
}

type gatedStore struct {
	device.Store
	hold     atomic.Bool
	reading  chan struct{}
	release  chan struct{}
	holdOnce sync.Once
}

func (g *gatedStore) State(ctx context.Context, d, a string) (device.State, error) {
	st, err := g.Store.State(ctx, d, a)
	if g.hold.Load() {
		g.holdOnce.Do(func() {
			close(g.reading)
			<-g.release
		})
	}
	return st, err
}

func TestObserve(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []device.Event
	f := newFixture(t, func(c *device.Config) {
		c.Observe = func(_ context.Context, e device.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	})
	ctx := context.Background()
	f.setPolicy(t, device.Policy{MinVersion: "2.0", Action: device.Notify, BlockedVersions: []string{"1.0.1"}})
	c := f.client(t, "dev", "1.0")
	_, _ = f.ctl.Check(ctx, c) // notice
	_, _ = f.ctl.Check(ctx, c) // passes: no event
	c.AppVersion = "1.0.1"
	_, _ = f.ctl.Check(ctx, c) // refused
	require.Len(t, events, 2)
	require.NotNil(t, events[0].Notice)
	require.NotNil(t, events[1].Refusal)
	require.Equal(t, device.CodeAppVersionBlocked, events[1].Refusal.Code)
	require.Equal(t, "1.0.1", events[1].Client.AppVersion)
}

func TestSeenRecordsUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.client(t, "dev", "1.0")
	require.NoError(t, f.ctl.Seen(ctx, c, device.Info{UserID: "ben", DisplayName: "Ben's phone"}))
	page, err := f.ctl.Search(ctx, device.Query{UserID: "ben"})
	require.NoError(t, err)
	require.Len(t, page.Devices, 1)
	require.Equal(t, "Ben's phone", page.Devices[0].DisplayName)
	require.ErrorIs(t, f.ctl.Seen(ctx, device.Client{}, device.Info{}), device.ErrInvalid)
}

func TestConcurrentChecksAndChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *device.Config) { c.CacheSize = 32 })
	ctx := context.Background()
	var clients []device.Client
	for _, d := range []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"} {
		clients = append(clients, f.client(t, d, "1.5"))
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				c := clients[(i+j)%len(clients)]
				_, err := f.ctl.Check(ctx, c)
				var r *device.Refusal
				if err != nil && !errors.As(err, &r) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for j := range 50 {
			st := device.Lost
			if j%2 == 1 {
				st = device.Active
			}
			_, err := f.ctl.SetStatus(ctx, device.StatusChange{DeviceID: clients[j%len(clients)].DeviceID, Status: st, Actor: "op", Reason: "r"})
			if err != nil {
				t.Error(err)
			}
			_, err = f.ctl.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: app, Platform: platform, MinVersion: "1.0"}, Actor: "op", Reason: "r"})
			if err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	// After the dust settles, every device's last status holds.
	for j := 42; j < 50; j++ {
		c := clients[j%len(clients)]
		_, err := f.ctl.Check(ctx, c)
		if j%2 == 1 {
			require.NoError(t, err)
		} else {
			requireRefused(t, err, device.CodeDeviceBlocked)
		}
	}
}
