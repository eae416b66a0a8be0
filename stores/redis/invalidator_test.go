package redis

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
)

// deadline bounds every wait for a delivery. Nothing is timed more finely.
const deadline = 5 * time.Second

// recorder collects what a subscriber receives.
type recorder struct {
	mu  sync.Mutex
	got []device.Invalidation
}

func (r *recorder) f(inv device.Invalidation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, inv)
}

func (r *recorder) count(inv device.Invalidation) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if g == inv {
			n++
		}
	}
	return n
}

func (r *recorder) has(inv device.Invalidation) func() bool {
	return func() bool { return r.count(inv) > 0 }
}

func newInvalidator(t *testing.T, c goredis.UniversalClient, cfg InvalidatorConfig) *Invalidator {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	inv, err := NewInvalidator(ctx, c, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, inv.Close()) })
	return inv
}

var all = device.Invalidation{All: true}

// Two instances, each with its own client: what one publishes, the
// other's subscribers receive; the publisher's own subscribers receive it
// once, at once.
func TestInvalidatorFanOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	a := newInvalidator(t, c1, InvalidatorConfig{Prefix: prefix})
	b := newInvalidator(t, c2, InvalidatorConfig{Prefix: prefix})
	var ra, rb, rb2 recorder
	a.Subscribe(ra.f)
	b.Subscribe(rb.f)
	b.Subscribe(rb2.f)

	stolen := device.Invalidation{DeviceID: "dev-1"}
	require.NoError(t, a.Publish(ctx, stolen))
	require.Equal(t, 1, ra.count(stolen), "local subscribers receive it before Publish returns")
	require.Eventually(t, rb.has(stolen), deadline, 5*time.Millisecond)
	require.Eventually(t, rb2.has(stolen), deadline, 5*time.Millisecond)

	policy := device.Invalidation{AppID: "com.example", Platform: "ios"}
	require.NoError(t, b.Publish(ctx, policy))
	require.Eventually(t, ra.has(policy), deadline, 5*time.Millisecond)
	// Redis delivers one channel's messages in order: a's own echo of
	// stolen arrived before policy, and was skipped.
	require.Equal(t, 1, ra.count(stolen), "no echo of a's own message")
	require.Equal(t, 1, rb.count(policy))
}

func TestInvalidatorPrefixesIsolate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	p1, p2 := newPrefix(t, c), newPrefix(t, c)
	a := newInvalidator(t, c, InvalidatorConfig{Prefix: p1})
	other := newInvalidator(t, c, InvalidatorConfig{Prefix: p2})
	same := newInvalidator(t, c, InvalidatorConfig{Prefix: p1})
	var rOther, rSame recorder
	other.Subscribe(rOther.f)
	same.Subscribe(rSame.f)

	require.NoError(t, a.Publish(ctx, device.Invalidation{DeviceID: "x"}))
	require.Eventually(t, rSame.has(device.Invalidation{DeviceID: "x"}), deadline, 5*time.Millisecond)
	// Then a marker on other's channel: once it arrives, x would have too.
	require.NoError(t, newInvalidator(t, c, InvalidatorConfig{Prefix: p2}).Publish(ctx, device.Invalidation{DeviceID: "marker"}))
	require.Eventually(t, rOther.has(device.Invalidation{DeviceID: "marker"}), deadline, 5*time.Millisecond)
	require.Zero(t, rOther.count(device.Invalidation{DeviceID: "x"}))
}

// A message on the channel that does not decode could have named
// anything: everything is invalidated. One without origin (published by
// an operator by hand) is delivered as it is.
func TestInvalidatorForeignMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	prefix := newPrefix(t, c)
	b := newInvalidator(t, c, InvalidatorConfig{Prefix: prefix})
	var r recorder
	b.Subscribe(r.f)
	require.NoError(t, c.Publish(ctx, prefix+ChannelSuffix, "not json").Err())
	require.Eventually(t, r.has(all), deadline, 5*time.Millisecond)
	require.NoError(t, c.Publish(ctx, prefix+ChannelSuffix, `{"device_id":"by-hand"}`).Err())
	require.Eventually(t, r.has(device.Invalidation{DeviceID: "by-hand"}), deadline, 5*time.Millisecond)
}

func TestInvalidatorCancelAndClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	prefix := newPrefix(t, c)
	a := newInvalidator(t, c, InvalidatorConfig{Prefix: prefix})

	b, err := NewInvalidator(ctx, c, InvalidatorConfig{Prefix: prefix, Logger: quietLogger()})
	require.NoError(t, err)
	var gone, kept recorder
	cancel := b.Subscribe(gone.f)
	b.Subscribe(kept.f)
	cancel()
	cancel() // twice is fine

	one := device.Invalidation{DeviceID: "one"}
	require.NoError(t, a.Publish(ctx, one))
	require.Eventually(t, kept.has(one), deadline, 5*time.Millisecond)
	require.Zero(t, gone.count(one), "a cancelled subscriber receives nothing")

	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close twice is fine")
	require.ErrorIs(t, b.Publish(ctx, one), ErrClosed)
	b.Subscribe(gone.f)() // a no-op after Close

	two := device.Invalidation{DeviceID: "two"}
	require.NoError(t, a.Publish(ctx, two))
	var ra recorder
	a.Subscribe(ra.f)
	require.NoError(t, a.Publish(ctx, two))
	require.Equal(t, 1, ra.count(two))
	require.Zero(t, kept.count(two), "a closed invalidator delivers nothing")

	cctx, cancelCtx := context.WithCancel(ctx)
	cancelCtx()
	require.ErrorIs(t, a.Publish(cctx, two), context.Canceled)
}

// A subscription whose connection is killed comes back by itself, and its
// subscribers are told to drop everything: they may have missed messages.
func TestInvalidatorReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := "moattest-" + strings.TrimSuffix(strings.TrimPrefix(newPrefix(t, newClient(t)), "moattest:"), ":")
	cb := newClient(t, func(o *goredis.Options) { o.ClientName = name })
	admin := newClient(t)
	prefix := newPrefix(t, admin)
	a := newInvalidator(t, admin, InvalidatorConfig{Prefix: prefix})
	b := newInvalidator(t, cb, InvalidatorConfig{Prefix: prefix})
	var r recorder
	b.Subscribe(r.f)

	// Find b's pub/sub connection by its client name, and kill it.
	list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	require.NoError(t, err)
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for _, f := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == name {
			ids = append(ids, fields["id"])
		}
	}
	require.Len(t, ids, 1, "b holds one pub/sub connection")
	require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err())

	require.Eventually(t, r.has(all), deadline, 5*time.Millisecond, "a reconnection invalidates everything")
	after := device.Invalidation{DeviceID: "after-reconnect"}
	require.Eventually(t, func() bool {
		return a.Publish(ctx, after) == nil && r.has(after)()
	}, deadline, 50*time.Millisecond)
}

// A connection that goes silent without closing (a vanished peer, a
// dropped route) is found by the ping, replaced, and reported as a
// reconnection.
func TestInvalidatorSilentConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newClient(t)
	p := startProxy(t, redisAddr(t))
	cb := goredis.NewClient(&goredis.Options{Addr: p.addr(), DialTimeout: time.Second})
	t.Cleanup(func() { _ = cb.Close() })
	prefix := newPrefix(t, admin)
	a := newInvalidator(t, admin, InvalidatorConfig{Prefix: prefix})
	b := newInvalidator(t, cb, InvalidatorConfig{Prefix: prefix, PingInterval: 50 * time.Millisecond})
	var r recorder
	b.Subscribe(r.f)

	before := device.Invalidation{DeviceID: "before"}
	require.NoError(t, a.Publish(ctx, before))
	require.Eventually(t, r.has(before), deadline, 5*time.Millisecond)
	require.Zero(t, r.count(all), "pings that are answered are not reconnections")

	p.blackhole()
	require.Eventually(t, r.has(all), deadline, 5*time.Millisecond, "the silent connection is replaced")
	after := device.Invalidation{DeviceID: "after"}
	require.Eventually(t, func() bool {
		return a.Publish(ctx, after) == nil && r.has(after)()
	}, deadline, 50*time.Millisecond)
}

// With Redis gone, Publish still reaches the local subscribers and
// reports that other instances may not have been told.
func TestInvalidatorPublishRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newClient(t)
	p := startProxy(t, redisAddr(t))
	cb := goredis.NewClient(&goredis.Options{
		Addr: p.addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { _ = cb.Close() })
	b := newInvalidator(t, cb, InvalidatorConfig{Prefix: newPrefix(t, admin)})
	var r recorder
	b.Subscribe(r.f)
	p.close()

	inv := device.Invalidation{DeviceID: "local"}
	err := b.Publish(ctx, inv)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "moat/redis: "), err.Error())
	require.Equal(t, 1, r.count(inv))
}

// The whole path: two device.Controls (two instances) share a registry;
// a device marked stolen through one is refused by the other long before
// its cache would expire.
func TestInvalidatorWithDeviceControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	registry := device.NewMemory(device.MemoryConfig{}) // stands for a shared PostgreSQL registry
	newControl := func(c goredis.UniversalClient) *device.Control {
		store, err := New(c, Config{Prefix: prefix})
		require.NoError(t, err)
		ctl, err := device.New(device.Config{
			Store: registry, KV: store, CacheTTL: time.Hour, Logger: quietLogger(),
			Invalidator: newInvalidator(t, c, InvalidatorConfig{Prefix: prefix}),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = ctl.Close() })
		return ctl
	}
	a, b := newControl(c1), newControl(c2)

	cl := device.Client{DeviceID: "phone-1", AppID: "com.example.travel", Platform: "ios", AppVersion: "1.0.0", ClientID: "c1"}
	require.NoError(t, a.Register(ctx, cl, device.Info{}))
	require.NoError(t, b.Allow(ctx, cl), "b caches the device as active")

	_, err := a.SetStatus(ctx, device.StatusChange{DeviceID: "phone-1", Status: device.Stolen, Actor: "ops", Reason: "test"})
	require.NoError(t, err)
	var refusal *device.Refusal
	require.Eventually(t, func() bool { return errors.As(b.Allow(ctx, cl), &refusal) }, deadline, 5*time.Millisecond)
}

// Redis goes away and comes back: what was published meanwhile is lost,
// so the returning subscription invalidates everything.
func TestInvalidatorRedisDownAndBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newClient(t)
	p := startProxy(t, redisAddr(t))
	cb := goredis.NewClient(&goredis.Options{Addr: p.addr(), DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { _ = cb.Close() })
	prefix := newPrefix(t, admin)
	a := newInvalidator(t, admin, InvalidatorConfig{Prefix: prefix})
	b := newInvalidator(t, cb, InvalidatorConfig{Prefix: prefix})
	var r recorder
	b.Subscribe(r.f)

	p.close()
	missed := device.Invalidation{DeviceID: "missed"}
	require.NoError(t, a.Publish(ctx, missed))
	p.reopen(t)

	require.Eventually(t, r.has(all), deadline, 5*time.Millisecond, "the missed message is covered by All")
	after := device.Invalidation{DeviceID: "after"}
	require.Eventually(t, func() bool {
		return a.Publish(ctx, after) == nil && r.has(after)()
	}, deadline, 50*time.Millisecond)
}
