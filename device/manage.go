package device

import (
	"context"
	"fmt"
	"time"
)

// The changes below go through the store and then invalidate the caches:
// this Control's at once, other instances' through the Invalidator. Call
// them rather than the store's methods, which would leave caches to
// expire on their own. A zero At is set to the current time.

// SetStatus changes the status of a device (c.AppID "") or of an app on
// it, and returns the audit entry. The next check of the device in this
// process sees the change. An error wrapping [ErrNotPropagated] comes with
// a valid entry: the change is stored, but other instances see it only
// after their CacheTTL.
func (c *Control) SetStatus(ctx context.Context, ch StatusChange) (AuditEntry, error) {
	ch.At = c.stamp(ch.At)
	return c.change(ctx, "setting status", ch.Validate, func() (AuditEntry, error) { return c.store.SetStatus(ctx, ch) },
		Invalidation{DeviceID: ch.DeviceID}, "device", ch.DeviceID, "app", ch.AppID, "status", ch.Status, "actor", ch.Actor, "reason", ch.Reason)
}

// Unregister forgets a device: the registry drops it with its apps and
// users, and its clients are refused ("device is not registered") until
// the app registers again, which starts a new record. It cannot be undone
// (the audit trail keeps the device's history). Unregistering is not a
// block: to cut a device off, set its status. A device that is blocked,
// or has an app blocked on it, cannot be unregistered ([ErrBlocked]), so
// that unregistering never lifts a block. Other errors are as for
// SetStatus.
func (c *Control) Unregister(ctx context.Context, u Unregistration) (AuditEntry, error) {
	u.At = c.stamp(u.At)
	return c.change(ctx, "unregistering", u.Validate, func() (AuditEntry, error) { return c.store.Unregister(ctx, u) },
		Invalidation{DeviceID: u.DeviceID}, "device", u.DeviceID, "actor", u.Actor, "reason", u.Reason)
}

// SetPolicy stores a version policy (replacing the app and platform's
// previous one) and returns the audit entry. To notify first and block
// later, set the same policy with Action Notify, then with Action Block.
// Errors are as for SetStatus; an invalid policy wraps [ErrInvalidPolicy].
func (c *Control) SetPolicy(ctx context.Context, ch PolicyChange) (AuditEntry, error) {
	ch.At = c.stamp(ch.At)
	p := ch.Policy
	return c.change(ctx, "setting policy", ch.Validate, func() (AuditEntry, error) { return c.store.SetPolicy(ctx, ch) },
		Invalidation{AppID: p.AppID, Platform: p.Platform}, "app", p.AppID, "platform", p.Platform,
		"min_version", p.MinVersion, "action", p.Action, "actor", ch.Actor, "reason", ch.Reason)
}

// DeletePolicy removes a version policy. Removing a missing policy is not
// an error and returns the zero entry. Errors are as for SetStatus.
func (c *Control) DeletePolicy(ctx context.Context, r PolicyRemoval) (AuditEntry, error) {
	r.At = c.stamp(r.At)
	return c.change(ctx, "deleting policy", r.Validate, func() (AuditEntry, error) { return c.store.DeletePolicy(ctx, r) },
		Invalidation{AppID: r.AppID, Platform: r.Platform}, "app", r.AppID, "platform", r.Platform, "actor", r.Actor, "reason", r.Reason)
}

func (c *Control) stamp(at time.Time) time.Time {
	if at.IsZero() {
		return c.now()
	}
	return at
}

// change validates, writes, logs and invalidates.
func (c *Control) change(ctx context.Context, what string, validate func() error, write func() (AuditEntry, error), inv Invalidation, attrs ...any) (AuditEntry, error) {
	if err := validate(); err != nil {
		return AuditEntry{}, err
	}
	e, err := write()
	if err != nil {
		return AuditEntry{}, fmt.Errorf("moat/device: %s: %w", what, err)
	}
	c.log.InfoContext(ctx, "moat/device: "+what, attrs...)
	return e, c.invalidate(ctx, inv)
}

// invalidate drops the local entries, then tells the other instances.
func (c *Control) invalidate(ctx context.Context, inv Invalidation) error {
	c.apply(inv)
	if err := c.inv.Publish(ctx, inv); err != nil {
		c.log.ErrorContext(ctx, "moat/device: publishing an invalidation", "error", err)
		return fmt.Errorf("%w: %w", ErrNotPropagated, err)
	}
	return nil
}

// Device returns a device from the registry, or an error wrapping
// ErrNotFound.
func (c *Control) Device(ctx context.Context, id string) (Device, error) {
	return c.store.Device(ctx, id)
}

// Search lists devices matching q.
func (c *Control) Search(ctx context.Context, q Query) (Page, error) {
	return c.store.Search(ctx, q)
}

// Audit lists audit entries matching q, newest first.
func (c *Control) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	return c.store.Audit(ctx, q)
}

// Policy returns the version policy of an app on a platform, or an error
// wrapping ErrNotFound.
func (c *Control) Policy(ctx context.Context, appID, platform string) (Policy, error) {
	return c.store.Policy(ctx, appID, platform)
}

// Policies lists every version policy.
func (c *Control) Policies(ctx context.Context) ([]Policy, error) {
	return c.store.Policies(ctx)
}
