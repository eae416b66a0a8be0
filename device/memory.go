package device

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of [MemoryConfig].
const (
	DefaultMaxDevices      = 1 << 20
	DefaultMaxAuditEntries = 1 << 20
	DefaultMaxPolicies     = 1 << 12
)

// MemoryConfig configures [NewMemory]. The zero value is ready to use.
type MemoryConfig struct {
	// MaxDevices bounds the devices held; Seen of a new device beyond it
	// fails with ErrFull. Zero means DefaultMaxDevices.
	MaxDevices int
	// MaxAuditEntries bounds the audit trail; beyond it the oldest entries
	// are dropped (the in-memory trail is for one process's life). Zero
	// means DefaultMaxAuditEntries.
	MaxAuditEntries int
	// MaxPolicies bounds the policies held; SetPolicy beyond it fails with
	// ErrFull. Zero means DefaultMaxPolicies.
	MaxPolicies int
}

// Memory is the in-memory [Store]: for tests, examples and a single
// server instance whose registry may be lost on restart. Every method
// holds one lock, so each is atomic.
type Memory struct {
	mu       sync.RWMutex
	cfg      MemoryConfig
	devices  map[string]*Device
	policies map[policyKey]Policy
	audit    []AuditEntry // oldest first
	seq      uint64
}

type policyKey struct{ app, platform string }

var (
	_ Store       = (*Memory)(nil)
	_ Registry    = (*Memory)(nil)
	_ StatusLog   = (*Memory)(nil)
	_ PolicyStore = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxDevices <= 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.MaxAuditEntries <= 0 {
		cfg.MaxAuditEntries = DefaultMaxAuditEntries
	}
	if cfg.MaxPolicies <= 0 {
		cfg.MaxPolicies = DefaultMaxPolicies
	}
	return &Memory{cfg: cfg, devices: map[string]*Device{}, policies: map[policyKey]Policy{}}
}

// Seen implements [Registry].
func (m *Memory) Seen(ctx context.Context, s Sighting) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	at := s.At.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[s.DeviceID]
	if !ok {
		if len(m.devices) >= m.cfg.MaxDevices {
			return fmt.Errorf("%w: %d devices", ErrFull, m.cfg.MaxDevices)
		}
		d = &Device{ID: s.DeviceID, Status: Active, FirstSeen: at, LastSeen: at}
	}
	var app *App
	if s.AppID != "" {
		i, found := slices.BinarySearchFunc(d.Apps, s.AppID, func(a App, id string) int { return strings.Compare(a.AppID, id) })
		if !found {
			if len(d.Apps) >= MaxAppsPerDevice {
				return fmt.Errorf("%w: %d apps on one device", ErrFull, MaxAppsPerDevice)
			}
			d.Apps = slices.Insert(d.Apps, i, App{AppID: s.AppID, Status: Active, FirstSeen: at, LastSeen: at})
		}
		app = &d.Apps[i]
	}
	m.devices[s.DeviceID] = d
	if at.After(d.LastSeen) {
		d.LastSeen = at
	}
	setIf(&d.Platform, s.Platform)
	setIf(&d.Model, s.Model)
	setIf(&d.OSVersion, s.OSVersion)
	setIf(&d.DisplayName, s.DisplayName)
	if s.UserID != "" {
		d.Users = slices.DeleteFunc(d.Users, func(u string) bool { return u == s.UserID })
		d.Users = slices.Insert(d.Users, 0, s.UserID)
		if len(d.Users) > MaxUsersPerDevice {
			d.Users = d.Users[:MaxUsersPerDevice]
		}
	}
	if app != nil {
		setIf(&app.AppVersion, s.AppVersion)
		if at.After(app.LastSeen) {
			app.LastSeen = at
		}
	}
	return nil
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// State implements [Registry].
func (m *Memory) State(ctx context.Context, deviceID, appID string) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.devices[deviceID]
	if !ok {
		return State{}, ErrNotFound
	}
	st := State{Status: d.Status, AppStatus: Active}
	if a := findApp(d, appID); a != nil {
		st.AppStatus = a.Status
	}
	return st, nil
}

func findApp(d *Device, appID string) *App {
	if appID == "" {
		return nil
	}
	i, found := slices.BinarySearchFunc(d.Apps, appID, func(a App, id string) int { return strings.Compare(a.AppID, id) })
	if !found {
		return nil
	}
	return &d.Apps[i]
}

// Device implements [Registry].
func (m *Memory) Device(ctx context.Context, id string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.devices[id]
	if !ok {
		return Device{}, ErrNotFound
	}
	return cloneDevice(d), nil
}

func cloneDevice(d *Device) Device {
	c := *d
	c.Users = slices.Clone(d.Users)
	c.Apps = slices.Clone(d.Apps)
	return c
}

// Search implements [Registry].
func (m *Memory) Search(ctx context.Context, q Query) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	if q.Status != "" && !q.Status.Valid() {
		return Page{}, fmt.Errorf("%w: unknown status %q", ErrInvalid, q.Status)
	}
	limit := PageLimit(q.Limit)
	name := strings.ToLower(q.Name)
	m.mu.RLock()
	var matches []*Device
	for id, d := range m.devices {
		switch {
		case q.After != "" && id <= q.After,
			q.UserID != "" && !slices.Contains(d.Users, q.UserID),
			q.Status != "" && d.Status != q.Status,
			q.AppID != "" && findApp(d, q.AppID) == nil,
			name != "" && !strings.Contains(strings.ToLower(d.DisplayName), name):
			continue
		}
		matches = append(matches, d)
	}
	slices.SortFunc(matches, func(a, b *Device) int { return strings.Compare(a.ID, b.ID) })
	page := Page{Devices: []Device{}}
	for i, d := range matches {
		if i == limit {
			page.Next = page.Devices[limit-1].ID
			break
		}
		page.Devices = append(page.Devices, cloneDevice(d))
	}
	m.mu.RUnlock()
	return page, nil
}

// SetStatus implements [StatusLog].
func (m *Memory) SetStatus(ctx context.Context, c StatusChange) (AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return AuditEntry{}, err
	}
	if err := c.Validate(); err != nil {
		return AuditEntry{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[c.DeviceID]
	if !ok {
		return AuditEntry{}, ErrNotFound
	}
	target := &d.Status
	if c.AppID != "" {
		a := findApp(d, c.AppID)
		if a == nil {
			return AuditEntry{}, ErrNotFound
		}
		target = &a.Status
	}
	e := AuditEntry{Action: AuditSetStatus, DeviceID: c.DeviceID, AppID: c.AppID, From: *target, To: c.Status}
	*target = c.Status
	return m.record(e, c.Actor, c.Reason, c.At), nil
}

// record appends an audit entry. The lock must be held.
func (m *Memory) record(e AuditEntry, actor, reason string, at time.Time) AuditEntry {
	m.seq++
	e.Seq, e.Actor, e.Reason, e.At = m.seq, actor, reason, at.UTC()
	if len(m.audit) >= m.cfg.MaxAuditEntries {
		m.audit = slices.Delete(m.audit, 0, len(m.audit)-m.cfg.MaxAuditEntries+1)
	}
	m.audit = append(m.audit, e)
	return cloneEntry(e)
}

func cloneEntry(e AuditEntry) AuditEntry {
	if e.Policy != nil {
		p := clonePolicy(*e.Policy)
		e.Policy = &p
	}
	return e
}

// Unregister implements [StatusLog].
func (m *Memory) Unregister(ctx context.Context, u Unregistration) (AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return AuditEntry{}, err
	}
	if err := u.Validate(); err != nil {
		return AuditEntry{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[u.DeviceID]
	if !ok {
		return AuditEntry{}, ErrNotFound
	}
	if blocked(d) {
		return AuditEntry{}, ErrBlocked
	}
	delete(m.devices, u.DeviceID)
	return m.record(AuditEntry{Action: AuditUnregister, DeviceID: u.DeviceID, From: d.Status}, u.Actor, u.Reason, u.At), nil
}

// blocked reports whether the device or an app on it is not active.
func blocked(d *Device) bool {
	if d.Status != Active {
		return true
	}
	for _, a := range d.Apps {
		if a.Status != Active {
			return true
		}
	}
	return false
}

// Audit implements [StatusLog].
func (m *Memory) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := PageLimit(q.Limit)
	out := []AuditEntry{}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := len(m.audit) - 1; i >= 0 && len(out) < limit; i-- {
		e := m.audit[i]
		switch {
		case q.Before != 0 && e.Seq >= q.Before,
			q.DeviceID != "" && e.DeviceID != q.DeviceID,
			q.AppID != "" && e.AppID != q.AppID:
			continue
		}
		out = append(out, cloneEntry(e))
	}
	return out, nil
}

// Policy implements [PolicyStore].
func (m *Memory) Policy(ctx context.Context, appID, platform string) (Policy, error) {
	if err := ctx.Err(); err != nil {
		return Policy{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.policies[policyKey{appID, platform}]
	if !ok {
		return Policy{}, ErrNotFound
	}
	return clonePolicy(p), nil
}

func clonePolicy(p Policy) Policy {
	p.BlockedVersions = slices.Clone(p.BlockedVersions)
	p.BlockedVersionCodes = slices.Clone(p.BlockedVersionCodes)
	if p.Translations != nil {
		t := make(map[string]string, len(p.Translations))
		for k, v := range p.Translations {
			t[k] = v
		}
		p.Translations = t
	}
	return p
}

// Policies implements [PolicyStore].
func (m *Memory) Policies(ctx context.Context) ([]Policy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	out := make([]Policy, 0, len(m.policies))
	for _, p := range m.policies {
		out = append(out, clonePolicy(p))
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Policy) int {
		return cmp.Or(strings.Compare(a.AppID, b.AppID), strings.Compare(a.Platform, b.Platform))
	})
	return out, nil
}

// SetPolicy implements [PolicyStore].
func (m *Memory) SetPolicy(ctx context.Context, c PolicyChange) (AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return AuditEntry{}, err
	}
	if err := c.Validate(); err != nil {
		return AuditEntry{}, err
	}
	p := clonePolicy(c.Policy)
	p.UpdatedAt, p.UpdatedBy = c.At.UTC(), c.Actor
	k := policyKey{p.AppID, p.Platform}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.policies[k]; !ok && len(m.policies) >= m.cfg.MaxPolicies {
		return AuditEntry{}, fmt.Errorf("%w: %d policies", ErrFull, m.cfg.MaxPolicies)
	}
	m.policies[k] = p
	return m.record(AuditEntry{Action: AuditSetPolicy, AppID: p.AppID, Platform: p.Platform, Policy: &p}, c.Actor, c.Reason, c.At), nil
}

// DeletePolicy implements [PolicyStore].
func (m *Memory) DeletePolicy(ctx context.Context, r PolicyRemoval) (AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return AuditEntry{}, err
	}
	if err := r.Validate(); err != nil {
		return AuditEntry{}, err
	}
	k := policyKey{r.AppID, r.Platform}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.policies[k]
	if !ok {
		return AuditEntry{}, nil
	}
	delete(m.policies, k)
	return m.record(AuditEntry{Action: AuditDeletePolicy, AppID: r.AppID, Platform: r.Platform, Policy: &p}, r.Actor, r.Reason, r.At), nil
}
