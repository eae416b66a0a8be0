// Package devicetest is the conformance suite for [device.Store]
// implementations. The in-memory store runs it in package device; the
// PostgreSQL store runs it unchanged against a real database.
//
//	func TestConformance(t *testing.T) {
//		devicetest.Run(t, devicetest.Harness{New: func(t *testing.T) device.Store {
//			return device.NewMemory(device.MemoryConfig{})
//		}})
//	}
//
// Stores take every time from their arguments (Sighting.At, the At of
// each change), so the suite needs no clock. Times are whole seconds in
// UTC and are compared with time.Time.Equal, so a backend may store them
// with microsecond precision.
package devicetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/device"
)

// Harness tells the suite how to make stores.
type Harness struct {
	// New returns an empty store. It is called once per subtest.
	New func(t *testing.T) device.Store
}

// T0 is the time the suite's first sighting happens at.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }

func requireTime(t *testing.T, want, got time.Time, what string) {
	t.Helper()
	require.Truef(t, want.Equal(got), "%s: want %s, got %s", what, want, got)
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	seen := func(t *testing.T, s device.Store, sg device.Sighting) {
		t.Helper()
		require.NoError(t, s.Seen(ctx, sg))
	}
	phone := device.Sighting{
		DeviceID: "dev-1", Platform: "ios", AppID: "com.example.travel", AppVersion: "1.10.0",
		Model: "iPhone15,2", OSVersion: "17.4", DisplayName: "Ana's iPhone", UserID: "ana", At: at(0),
	}

	t.Run("SeenCreatesDevice", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, "dev-1", d.ID)
		require.Equal(t, "ios", d.Platform)
		require.Equal(t, "iPhone15,2", d.Model)
		require.Equal(t, "17.4", d.OSVersion)
		require.Equal(t, "Ana's iPhone", d.DisplayName)
		require.Equal(t, device.Active, d.Status)
		require.Equal(t, []string{"ana"}, d.Users)
		requireTime(t, at(0), d.FirstSeen, "FirstSeen")
		requireTime(t, at(0), d.LastSeen, "LastSeen")
		require.Len(t, d.Apps, 1)
		a := d.Apps[0]
		require.Equal(t, "com.example.travel", a.AppID)
		require.Equal(t, "1.10.0", a.AppVersion)
		require.Equal(t, device.Active, a.Status)
		requireTime(t, at(0), a.FirstSeen, "app FirstSeen")
	})

	t.Run("SeenUpdates", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		seen(t, s, device.Sighting{DeviceID: "dev-1", AppID: "com.example.travel", AppVersion: "1.11.0", UserID: "ben", At: at(60)})
		seen(t, s, device.Sighting{DeviceID: "dev-1", AppID: "com.example.wallet", AppVersion: "3.0", At: at(30)})
		seen(t, s, device.Sighting{DeviceID: "dev-1", UserID: "ana", At: at(90)})
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, "Ana's iPhone", d.DisplayName, "empty fields keep what is known")
		require.Equal(t, "ios", d.Platform)
		require.Equal(t, []string{"ana", "ben"}, d.Users, "most recent first, no duplicates")
		requireTime(t, at(0), d.FirstSeen, "FirstSeen")
		requireTime(t, at(90), d.LastSeen, "LastSeen")
		require.Len(t, d.Apps, 2)
		require.Equal(t, "com.example.travel", d.Apps[0].AppID, "apps sorted by id")
		require.Equal(t, "1.11.0", d.Apps[0].AppVersion)
		requireTime(t, at(60), d.Apps[0].LastSeen, "app LastSeen")
		require.Equal(t, "com.example.wallet", d.Apps[1].AppID)
		requireTime(t, at(30), d.Apps[1].FirstSeen, "second app FirstSeen")

		// An older sighting does not move LastSeen back.
		seen(t, s, device.Sighting{DeviceID: "dev-1", At: at(10)})
		d, err = s.Device(ctx, "dev-1")
		require.NoError(t, err)
		requireTime(t, at(90), d.LastSeen, "LastSeen after an older sighting")
	})

	t.Run("UsersBounded", func(t *testing.T) {
		s := h.New(t)
		for i := range device.MaxUsersPerDevice + 8 {
			seen(t, s, device.Sighting{DeviceID: "dev-1", UserID: fmt.Sprintf("user-%02d", i), At: at(i)})
		}
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Len(t, d.Users, device.MaxUsersPerDevice)
		require.Equal(t, fmt.Sprintf("user-%02d", device.MaxUsersPerDevice+7), d.Users[0])
	})

	t.Run("SeenInvalid", func(t *testing.T) {
		s := h.New(t)
		for name, sg := range map[string]device.Sighting{
			"empty device":   {At: at(0)},
			"control char":   {DeviceID: "dev\n1", At: at(0)},
			"long device id": {DeviceID: string(make([]byte, device.MaxIDLen+1)), At: at(0)},
			"zero time":      {DeviceID: "dev-1"},
			"bad utf-8":      {DeviceID: "dev-1", DisplayName: "\xff", At: at(0)},
		} {
			require.ErrorIs(t, s.Seen(ctx, sg), device.ErrInvalid, name)
		}
		_, err := s.Device(ctx, "dev-1")
		require.ErrorIs(t, err, device.ErrNotFound)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := h.New(t)
		_, err := s.Device(ctx, "nope")
		require.ErrorIs(t, err, device.ErrNotFound)
		_, err = s.State(ctx, "nope", "app")
		require.ErrorIs(t, err, device.ErrNotFound)
		_, err = s.Policy(ctx, "app", "ios")
		require.ErrorIs(t, err, device.ErrNotFound)
		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "nope", Status: device.Lost, Actor: "op", Reason: "r", At: at(1)})
		require.ErrorIs(t, err, device.ErrNotFound)
		_, err = s.Unregister(ctx, device.Unregistration{DeviceID: "nope", Actor: "op", Reason: "r", At: at(1)})
		require.ErrorIs(t, err, device.ErrNotFound)
		entries, err := s.Audit(ctx, device.AuditQuery{})
		require.NoError(t, err)
		require.Empty(t, entries, "failed changes leave no audit entry")
	})

	t.Run("State", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		st, err := s.State(ctx, "dev-1", "com.example.travel")
		require.NoError(t, err)
		require.Equal(t, device.Active, st.Status)
		require.Equal(t, device.Active, st.AppStatus)
		st, err = s.State(ctx, "dev-1", "never.seen")
		require.NoError(t, err)
		require.Equal(t, device.Active, st.AppStatus, "an app without a record is active")
		st, err = s.State(ctx, "dev-1", "")
		require.NoError(t, err)
		require.Equal(t, device.Active, st.AppStatus)

		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", AppID: "com.example.travel", Status: device.Disabled, Actor: "op", Reason: "fraud", At: at(5)})
		require.NoError(t, err)
		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Lost, Actor: "op", Reason: "owner called", At: at(6)})
		require.NoError(t, err)
		st, err = s.State(ctx, "dev-1", "com.example.travel")
		require.NoError(t, err)
		require.Equal(t, device.Lost, st.Status)
		require.Equal(t, device.Disabled, st.AppStatus)
	})

	t.Run("SetStatus", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		e, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Stolen, Actor: "alice@ops", Reason: "reported stolen", At: at(10)})
		require.NoError(t, err)
		require.NotZero(t, e.Seq)
		require.Equal(t, device.AuditSetStatus, e.Action)
		require.Equal(t, "dev-1", e.DeviceID)
		require.Empty(t, e.AppID)
		require.Equal(t, device.Active, e.From)
		require.Equal(t, device.Stolen, e.To)
		require.Equal(t, "alice@ops", e.Actor)
		require.Equal(t, "reported stolen", e.Reason)
		requireTime(t, at(10), e.At, "entry At")
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Stolen, d.Status)

		// Reversible.
		e2, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Active, Actor: "bob@ops", Reason: "found", At: at(20)})
		require.NoError(t, err)
		require.Greater(t, e2.Seq, e.Seq)
		require.Equal(t, device.Stolen, e2.From)
		require.Equal(t, device.Active, e2.To)
		d, err = s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Active, d.Status)
	})

	t.Run("SetAppStatus", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		e, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", AppID: "com.example.travel", Status: device.Disabled, Actor: "op", Reason: "abuse", At: at(1)})
		require.NoError(t, err)
		require.Equal(t, "com.example.travel", e.AppID)
		require.Equal(t, device.Active, e.From)
		require.Equal(t, device.Disabled, e.To)
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Active, d.Status, "the device itself stays active")
		require.Equal(t, device.Disabled, d.Apps[0].Status)

		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", AppID: "other.app", Status: device.Disabled, Actor: "op", Reason: "r", At: at(2)})
		require.ErrorIs(t, err, device.ErrNotFound)
	})

	t.Run("SetStatusInvalid", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		for name, c := range map[string]device.StatusChange{
			"unknown status":   {DeviceID: "dev-1", Status: "gone", Actor: "op", Reason: "r", At: at(1)},
			"empty status":     {DeviceID: "dev-1", Actor: "op", Reason: "r", At: at(1)},
			"app marked lost":  {DeviceID: "dev-1", AppID: "com.example.travel", Status: device.Lost, Actor: "op", Reason: "r", At: at(1)},
			"no actor":         {DeviceID: "dev-1", Status: device.Lost, Reason: "r", At: at(1)},
			"no reason":        {DeviceID: "dev-1", Status: device.Lost, Actor: "op", At: at(1)},
			"no time":          {DeviceID: "dev-1", Status: device.Lost, Actor: "op", Reason: "r"},
			"empty device id":  {Status: device.Lost, Actor: "op", Reason: "r", At: at(1)},
			"reason with NULs": {DeviceID: "dev-1", Status: device.Lost, Actor: "op", Reason: "a\x00b", At: at(1)},
		} {
			_, err := s.SetStatus(ctx, c)
			require.ErrorIs(t, err, device.ErrInvalid, name)
		}
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Active, d.Status)
		entries, err := s.Audit(ctx, device.AuditQuery{})
		require.NoError(t, err)
		require.Empty(t, entries)
	})

	t.Run("Unregister", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		_, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Lost, Actor: "op", Reason: "lost", At: at(5)})
		require.NoError(t, err)
		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Active, Actor: "op", Reason: "found", At: at(6)})
		require.NoError(t, err)
		_, err = s.Unregister(ctx, device.Unregistration{DeviceID: "dev-1", Actor: "op", At: at(9)})
		require.ErrorIs(t, err, device.ErrInvalid, "a reason is required")

		e, err := s.Unregister(ctx, device.Unregistration{DeviceID: "dev-1", Actor: "op", Reason: "owner request", At: at(10)})
		require.NoError(t, err)
		require.NotZero(t, e.Seq)
		require.Equal(t, device.AuditUnregister, e.Action)
		require.Equal(t, "dev-1", e.DeviceID)
		require.Equal(t, device.Active, e.From)
		require.Equal(t, "owner request", e.Reason)
		requireTime(t, at(10), e.At, "entry At")
		_, err = s.Device(ctx, "dev-1")
		require.ErrorIs(t, err, device.ErrNotFound)
		_, err = s.State(ctx, "dev-1", "com.example.travel")
		require.ErrorIs(t, err, device.ErrNotFound)
		page, err := s.Search(ctx, device.Query{UserID: "ana"})
		require.NoError(t, err)
		require.Empty(t, page.Devices)
		entries, err := s.Audit(ctx, device.AuditQuery{DeviceID: "dev-1"})
		require.NoError(t, err)
		require.Len(t, entries, 3, "the history stays")

		// Registering again starts a new record.
		seen(t, s, device.Sighting{DeviceID: "dev-1", AppID: "com.example.travel", UserID: "carl", At: at(20)})
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, []string{"carl"}, d.Users)
		require.Empty(t, d.DisplayName)
		requireTime(t, at(20), d.FirstSeen, "FirstSeen of the new record")
	})

	t.Run("UnregisterBlocked", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		_, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Stolen, Actor: "op", Reason: "stolen", At: at(1)})
		require.NoError(t, err)
		_, err = s.Unregister(ctx, device.Unregistration{DeviceID: "dev-1", Actor: "op", Reason: "cleanup", At: at(2)})
		require.ErrorIs(t, err, device.ErrBlocked, "unregistering would lift the block")
		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: device.Active, Actor: "op", Reason: "found", At: at(3)})
		require.NoError(t, err)
		_, err = s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", AppID: "com.example.travel", Status: device.Disabled, Actor: "op", Reason: "abuse", At: at(4)})
		require.NoError(t, err)
		_, err = s.Unregister(ctx, device.Unregistration{DeviceID: "dev-1", Actor: "op", Reason: "cleanup", At: at(5)})
		require.ErrorIs(t, err, device.ErrBlocked, "an app blocked on it counts")
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Disabled, d.Apps[0].Status)
		entries, err := s.Audit(ctx, device.AuditQuery{DeviceID: "dev-1"})
		require.NoError(t, err)
		require.Len(t, entries, 3, "refused unregistrations are not recorded")
	})

	t.Run("Search", func(t *testing.T) {
		s := h.New(t)
		for i, sg := range []device.Sighting{
			{DeviceID: "d1", AppID: "travel", DisplayName: "Ana's iPhone", UserID: "ana"},
			{DeviceID: "d2", AppID: "travel", DisplayName: "Work phone", UserID: "ben"},
			{DeviceID: "d3", AppID: "wallet", DisplayName: "ANA'S IPAD", UserID: "ana"},
			{DeviceID: "d4", AppID: "wallet", DisplayName: "Kitchen tablet"},
			{DeviceID: "d5", AppID: "travel", UserID: "ben"},
		} {
			sg.At = at(i)
			seen(t, s, sg)
		}
		_, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "d4", Status: device.Lost, Actor: "op", Reason: "r", At: at(10)})
		require.NoError(t, err)
		ids := func(q device.Query) ([]string, string) {
			t.Helper()
			p, err := s.Search(ctx, q)
			require.NoError(t, err)
			out := []string{}
			for _, d := range p.Devices {
				out = append(out, d.ID)
			}
			return out, p.Next
		}
		got, next := ids(device.Query{})
		require.Equal(t, []string{"d1", "d2", "d3", "d4", "d5"}, got)
		require.Empty(t, next)
		got, _ = ids(device.Query{UserID: "ana"})
		require.Equal(t, []string{"d1", "d3"}, got)
		got, _ = ids(device.Query{Name: "ana's"})
		require.Equal(t, []string{"d1", "d3"}, got, "name matches a substring, ignoring case")
		got, _ = ids(device.Query{Name: "PHONE"})
		require.Equal(t, []string{"d1", "d2"}, got)
		got, _ = ids(device.Query{Status: device.Lost})
		require.Equal(t, []string{"d4"}, got)
		got, _ = ids(device.Query{AppID: "travel", UserID: "ben"})
		require.Equal(t, []string{"d2", "d5"}, got)
		got, _ = ids(device.Query{UserID: "nobody"})
		require.Empty(t, got)

		got, next = ids(device.Query{Limit: 2})
		require.Equal(t, []string{"d1", "d2"}, got)
		require.Equal(t, "d2", next)
		got, next = ids(device.Query{Limit: 2, After: next})
		require.Equal(t, []string{"d3", "d4"}, got)
		got, next = ids(device.Query{Limit: 2, After: next})
		require.Equal(t, []string{"d5"}, got)
		require.Empty(t, next)

		_, err = s.Search(ctx, device.Query{Status: "bogus"})
		require.ErrorIs(t, err, device.ErrInvalid)
	})

	t.Run("Audit", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		seen(t, s, device.Sighting{DeviceID: "dev-2", AppID: "com.example.travel", At: at(0)})
		change := func(dev, app string, st device.Status, sec int) device.AuditEntry {
			t.Helper()
			e, err := s.SetStatus(ctx, device.StatusChange{DeviceID: dev, AppID: app, Status: st, Actor: "op", Reason: "r", At: at(sec)})
			require.NoError(t, err)
			return e
		}
		e1 := change("dev-1", "", device.Lost, 1)
		e2 := change("dev-2", "", device.Disabled, 2)
		e3 := change("dev-1", "com.example.travel", device.Disabled, 3)
		e4, err := s.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "com.example.travel", Platform: "ios", MinVersion: "1.10.0"}, Actor: "op", Reason: "r", At: at(4)})
		require.NoError(t, err)
		seqs := func(q device.AuditQuery) []uint64 {
			t.Helper()
			es, err := s.Audit(ctx, q)
			require.NoError(t, err)
			out := []uint64{}
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		require.Equal(t, []uint64{e4.Seq, e3.Seq, e2.Seq, e1.Seq}, seqs(device.AuditQuery{}), "newest first")
		require.Equal(t, []uint64{e3.Seq, e1.Seq}, seqs(device.AuditQuery{DeviceID: "dev-1"}))
		require.Equal(t, []uint64{e4.Seq, e3.Seq}, seqs(device.AuditQuery{AppID: "com.example.travel"}))
		require.Equal(t, []uint64{e4.Seq, e3.Seq}, seqs(device.AuditQuery{Limit: 2}))
		require.Equal(t, []uint64{e2.Seq, e1.Seq}, seqs(device.AuditQuery{Before: e3.Seq}))
		require.Equal(t, []uint64{e1.Seq}, seqs(device.AuditQuery{DeviceID: "dev-1", Before: e3.Seq}))
	})

	t.Run("Policies", func(t *testing.T) {
		s := h.New(t)
		p := device.Policy{
			AppID: "com.example.travel", Platform: "ios", MinVersion: "1.10.0", Action: device.Notify,
			BlockedVersions: []string{"1.9.3"}, Message: "Please update", Translations: map[string]string{"fr": "Mettez à jour"},
			DownloadURL: "https://apps.apple.com/app/id123",
		}
		e, err := s.SetPolicy(ctx, device.PolicyChange{Policy: p, Actor: "alice", Reason: "CVE-2026-1", At: at(1)})
		require.NoError(t, err)
		require.Equal(t, device.AuditSetPolicy, e.Action)
		require.Equal(t, "com.example.travel", e.AppID)
		require.Equal(t, "ios", e.Platform)
		require.NotNil(t, e.Policy)
		require.Equal(t, "1.10.0", e.Policy.MinVersion)

		got, err := s.Policy(ctx, "com.example.travel", "ios")
		require.NoError(t, err)
		require.Equal(t, p.MinVersion, got.MinVersion)
		require.Equal(t, p.Action, got.Action)
		require.Equal(t, p.BlockedVersions, got.BlockedVersions)
		require.Equal(t, p.Message, got.Message)
		require.Equal(t, p.Translations, got.Translations)
		require.Equal(t, p.DownloadURL, got.DownloadURL)
		require.Equal(t, "alice", got.UpdatedBy)
		requireTime(t, at(1), got.UpdatedAt, "UpdatedAt")
		_, err = s.Policy(ctx, "com.example.travel", "android")
		require.ErrorIs(t, err, device.ErrNotFound, "policies are per platform")

		// Replace: notify first, then block.
		p.Action = device.Block
		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: p, Actor: "bob", Reason: "enforce", At: at(2)})
		require.NoError(t, err)
		got, err = s.Policy(ctx, "com.example.travel", "ios")
		require.NoError(t, err)
		require.Equal(t, device.Block, got.Action)
		require.Equal(t, "bob", got.UpdatedBy)

		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "com.example.travel", Platform: "android", MinVersionCode: 42}, Actor: "op", Reason: "r", At: at(3)})
		require.NoError(t, err)
		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "com.example.alpha", Platform: "web"}, Actor: "op", Reason: "r", At: at(3)})
		require.NoError(t, err)
		all, err := s.Policies(ctx)
		require.NoError(t, err)
		var keys []string
		for _, p := range all {
			keys = append(keys, p.AppID+"/"+p.Platform)
		}
		require.Equal(t, []string{"com.example.alpha/web", "com.example.travel/android", "com.example.travel/ios"}, keys)

		// Invalid policies are refused and change nothing.
		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: "com.example.travel", Platform: "ios", MinVersion: "1.x"}, Actor: "op", Reason: "r", At: at(4)})
		require.ErrorIs(t, err, device.ErrInvalidPolicy)
		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: p, Actor: "op", At: at(4)})
		require.ErrorIs(t, err, device.ErrInvalid, "a reason is required")
		got, err = s.Policy(ctx, "com.example.travel", "ios")
		require.NoError(t, err)
		require.Equal(t, "1.10.0", got.MinVersion)

		// Delete.
		e, err = s.DeletePolicy(ctx, device.PolicyRemoval{AppID: "com.example.travel", Platform: "ios", Actor: "op", Reason: "done", At: at(5)})
		require.NoError(t, err)
		require.Equal(t, device.AuditDeletePolicy, e.Action)
		require.NotNil(t, e.Policy)
		require.Equal(t, "1.10.0", e.Policy.MinVersion, "the entry keeps the removed policy")
		_, err = s.Policy(ctx, "com.example.travel", "ios")
		require.ErrorIs(t, err, device.ErrNotFound)
		e, err = s.DeletePolicy(ctx, device.PolicyRemoval{AppID: "com.example.travel", Platform: "ios", Actor: "op", Reason: "again", At: at(6)})
		require.NoError(t, err, "removing a missing policy is not an error")
		require.Zero(t, e.Seq)
		entries, err := s.Audit(ctx, device.AuditQuery{AppID: "com.example.travel"})
		require.NoError(t, err)
		require.Equal(t, device.AuditDeletePolicy, entries[0].Action, "nothing recorded for the second removal")
	})

	t.Run("CallersOwnResults", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		d.Users[0] = "mallory"
		d.Apps[0].Status = device.Disabled
		d, err = s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, "ana", d.Users[0])
		require.Equal(t, device.Active, d.Apps[0].Status)

		p := device.Policy{AppID: "a", Platform: "ios", BlockedVersions: []string{"1.0.0"}, Translations: map[string]string{"fr": "x"}}
		_, err = s.SetPolicy(ctx, device.PolicyChange{Policy: p, Actor: "op", Reason: "r", At: at(1)})
		require.NoError(t, err)
		p.BlockedVersions[0] = "9.9.9"
		p.Translations["fr"] = "y"
		got, err := s.Policy(ctx, "a", "ios")
		require.NoError(t, err)
		require.Equal(t, []string{"1.0.0"}, got.BlockedVersions)
		got.Translations["fr"] = "z"
		got, err = s.Policy(ctx, "a", "ios")
		require.NoError(t, err)
		require.Equal(t, "x", got.Translations["fr"])
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, s.Seen(cctx, device.Sighting{DeviceID: "dev-2", At: at(1)}))
		_, err := s.SetStatus(cctx, device.StatusChange{DeviceID: "dev-1", Status: device.Lost, Actor: "op", Reason: "r", At: at(1)})
		require.Error(t, err)
		_, err = s.SetPolicy(cctx, device.PolicyChange{Policy: device.Policy{AppID: "a", Platform: "ios"}, Actor: "op", Reason: "r", At: at(1)})
		require.Error(t, err)
		_, err = s.Device(ctx, "dev-2")
		require.ErrorIs(t, err, device.ErrNotFound)
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, device.Active, d.Status)
		_, err = s.Policy(ctx, "a", "ios")
		require.ErrorIs(t, err, device.ErrNotFound)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := h.New(t)
		seen(t, s, phone)
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				st := device.Lost
				if i%2 == 0 {
					st = device.Active
				}
				_, err := s.SetStatus(ctx, device.StatusChange{DeviceID: "dev-1", Status: st, Actor: "op", Reason: "r", At: at(i + 1)})
				errs <- err
			})
			wg.Go(func() {
				errs <- s.Seen(ctx, device.Sighting{DeviceID: "dev-1", UserID: fmt.Sprintf("u%d", i), At: at(i + 1)})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		entries, err := s.Audit(ctx, device.AuditQuery{DeviceID: "dev-1"})
		require.NoError(t, err)
		require.Len(t, entries, n, "every change is audited")
		seqs := map[uint64]bool{}
		for _, e := range entries {
			seqs[e.Seq] = true
		}
		require.Len(t, seqs, n, "sequence numbers are unique")
		// Each entry's From is the status the previous one set.
		for i := 0; i+1 < len(entries); i++ {
			require.Equal(t, entries[i+1].To, entries[i].From, "entry %d", entries[i].Seq)
		}
		d, err := s.Device(ctx, "dev-1")
		require.NoError(t, err)
		require.Equal(t, entries[0].To, d.Status)
		require.Len(t, d.Users, n+1, "no user lost")
	})
}
