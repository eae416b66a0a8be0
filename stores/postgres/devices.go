package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/device"
)

// Devices is the PostgreSQL [device.Store]: the registry (tables devices
// and device_apps), the status log with its audit trail (device_audit)
// and the version policies (version_policies).
//
// Every change runs in one transaction that first locks the device's row
// (the upsert of Seen, SELECT ... FOR UPDATE elsewhere), so changes to one
// device are serialized: concurrent sightings lose no user and no app, an
// audit entry's From is the status the previous change set, and a status
// change and its audit entry commit together or not at all. Audit
// sequence numbers come from an identity column, drawn after the lock, so
// the entries of one device are numbered in the order their changes
// happened. Ids sort bytewise (COLLATE "C"), as in the memory store.
//
// Times are stored with microsecond precision and returned in UTC.
type Devices struct {
	db *pgxpool.Pool
}

const deviceColumns = `d.id, d.status, d.platform, d.model, d.os_version, d.display_name, d.users, d.first_seen, d.last_seen`

const appColumns = `a.app_id, a.app_version, a.status, a.first_seen, a.last_seen`

// Seen implements [device.Registry]. One transaction: an upsert of the
// device row (which locks it), then, when the sighting names an app, an
// upsert of the app row that refuses a new app beyond
// [device.MaxAppsPerDevice] with [device.ErrFull].
func (s *Devices) Seen(ctx context.Context, sg device.Sighting) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sg.Validate(); err != nil {
		return err
	}
	at := sg.At.UTC()
	return inTx(ctx, s.db, "recording a sighting", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
INSERT INTO devices AS d (id, status, platform, model, os_version, display_name, display_name_lower, users, first_seen, last_seen)
VALUES ($1, 'active', $2, $3, $4, $5, $6, CASE WHEN $7::text = '' THEN '{}'::text[] ELSE ARRAY[$7::text] END, $8, $8)
ON CONFLICT (id) DO UPDATE SET
	platform           = CASE WHEN $2 = '' THEN d.platform ELSE $2 END,
	model              = CASE WHEN $3 = '' THEN d.model ELSE $3 END,
	os_version         = CASE WHEN $4 = '' THEN d.os_version ELSE $4 END,
	display_name       = CASE WHEN $5 = '' THEN d.display_name ELSE $5 END,
	display_name_lower = CASE WHEN $5 = '' THEN d.display_name_lower ELSE $6 END,
	users              = CASE WHEN $7::text = '' THEN d.users
	                          ELSE (ARRAY[$7::text] || array_remove(d.users, $7::text))[1:$9] END,
	last_seen          = GREATEST(d.last_seen, $8)`,
			sg.DeviceID, sg.Platform, sg.Model, sg.OSVersion, sg.DisplayName, strings.ToLower(sg.DisplayName),
			sg.UserID, at, device.MaxUsersPerDevice)
		if err != nil {
			return dbError("recording a sighting", err)
		}
		if sg.AppID == "" {
			return nil
		}
		tag, err := tx.Exec(ctx, `
INSERT INTO device_apps AS a (device_id, app_id, app_version, status, first_seen, last_seen)
SELECT $1, $2, $3, 'active', $4, $4
WHERE EXISTS (SELECT 1 FROM device_apps WHERE device_id = $1 AND app_id = $2)
   OR (SELECT count(*) FROM device_apps WHERE device_id = $1) < $5
ON CONFLICT (device_id, app_id) DO UPDATE SET
	app_version = CASE WHEN $3 = '' THEN a.app_version ELSE $3 END,
	last_seen   = GREATEST(a.last_seen, $4)`,
			sg.DeviceID, sg.AppID, sg.AppVersion, at, device.MaxAppsPerDevice)
		if err != nil {
			return dbError("recording a sighting", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %d apps on one device", device.ErrFull, device.MaxAppsPerDevice)
		}
		return nil
	})
}

// State implements [device.Registry].
func (s *Devices) State(ctx context.Context, deviceID, appID string) (device.State, error) {
	if err := ctx.Err(); err != nil {
		return device.State{}, err
	}
	var st device.State
	var app *string
	err := s.db.QueryRow(ctx, `
SELECT d.status, a.status FROM devices d
LEFT JOIN device_apps a ON a.device_id = d.id AND a.app_id = $2
WHERE d.id = $1`, deviceID, appID).Scan(&st.Status, &app)
	if errors.Is(err, pgx.ErrNoRows) {
		return device.State{}, device.ErrNotFound
	}
	if err != nil {
		return device.State{}, dbError("reading device state", err)
	}
	st.AppStatus = device.Active
	if app != nil {
		st.AppStatus = device.Status(*app)
	}
	return st, nil
}

// Device implements [device.Registry]. One statement, so the device and
// its apps come from one snapshot.
func (s *Devices) Device(ctx context.Context, id string) (device.Device, error) {
	if err := ctx.Err(); err != nil {
		return device.Device{}, err
	}
	rows, err := s.db.Query(ctx, `
SELECT `+deviceColumns+`, `+appColumns+`
FROM devices d LEFT JOIN device_apps a ON a.device_id = d.id
WHERE d.id = $1
ORDER BY a.app_id`, id)
	if err != nil {
		return device.Device{}, dbError("reading device", err)
	}
	devs, err := scanDevices(rows)
	if err != nil {
		return device.Device{}, dbError("reading device", err)
	}
	if len(devs) == 0 {
		return device.Device{}, device.ErrNotFound
	}
	return devs[0], nil
}

// scanDevices reads rows of deviceColumns and appColumns ordered by device
// id then app id, grouping the apps under their device.
func scanDevices(rows pgx.Rows) ([]device.Device, error) {
	defer rows.Close()
	var out []device.Device
	for rows.Next() {
		var d device.Device
		var appID, appVersion, appStatus *string
		var appFirst, appLast *time.Time
		if err := rows.Scan(&d.ID, &d.Status, &d.Platform, &d.Model, &d.OSVersion, &d.DisplayName, &d.Users, &d.FirstSeen, &d.LastSeen,
			&appID, &appVersion, &appStatus, &appFirst, &appLast); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != d.ID {
			d.FirstSeen, d.LastSeen = d.FirstSeen.UTC(), d.LastSeen.UTC()
			if len(d.Users) == 0 {
				d.Users = nil
			}
			out = append(out, d)
		}
		if appID != nil {
			last := &out[len(out)-1]
			last.Apps = append(last.Apps, device.App{
				AppID: *appID, AppVersion: *appVersion, Status: device.Status(*appStatus),
				FirstSeen: appFirst.UTC(), LastSeen: appLast.UTC(),
			})
		}
	}
	return out, rows.Err()
}

// Search implements [device.Registry]. One statement: the page of
// matching devices (one more than asked, to know whether a next page
// exists) joined with their apps.
func (s *Devices) Search(ctx context.Context, q device.Query) (device.Page, error) {
	if err := ctx.Err(); err != nil {
		return device.Page{}, err
	}
	if q.Status != "" && !q.Status.Valid() {
		return device.Page{}, fmt.Errorf("%w: unknown status %q", device.ErrInvalid, q.Status)
	}
	limit := device.PageLimit(q.Limit)
	rows, err := s.db.Query(ctx, `
WITH page AS (
	SELECT * FROM devices d
	WHERE ($1::text = '' OR d.users @> ARRAY[$1::text])
	  AND ($2::text = '' OR strpos(d.display_name_lower, $2::text) > 0)
	  AND ($3::text = '' OR d.status = $3::text)
	  AND ($4::text = '' OR EXISTS (SELECT 1 FROM device_apps x WHERE x.device_id = d.id AND x.app_id = $4::text))
	  AND ($5::text = '' OR d.id > $5::text)
	ORDER BY d.id
	LIMIT $6::bigint
)
SELECT `+deviceColumns+`, `+appColumns+`
FROM page d LEFT JOIN device_apps a ON a.device_id = d.id
ORDER BY d.id, a.app_id`,
		q.UserID, strings.ToLower(q.Name), string(q.Status), q.AppID, q.After, limit+1)
	if err != nil {
		return device.Page{}, dbError("searching devices", err)
	}
	devs, err := scanDevices(rows)
	if err != nil {
		return device.Page{}, dbError("searching devices", err)
	}
	page := device.Page{Devices: []device.Device{}}
	if len(devs) > limit {
		devs = devs[:limit]
		page.Next = devs[limit-1].ID
	}
	page.Devices = append(page.Devices, devs...)
	return page, nil
}

// lockDevice locks the device row for the rest of tx and returns its
// status, or device.ErrNotFound.
func lockDevice(ctx context.Context, tx pgx.Tx, id string) (device.Status, error) {
	var st device.Status
	err := tx.QueryRow(ctx, `SELECT status FROM devices WHERE id = $1 FOR UPDATE`, id).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", device.ErrNotFound
	}
	if err != nil {
		return "", dbError("locking device", err)
	}
	return st, nil
}

// SetStatus implements [device.StatusLog]. One transaction: lock the
// device row (and read the app row), update, append the audit entry.
func (s *Devices) SetStatus(ctx context.Context, c device.StatusChange) (device.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return device.AuditEntry{}, err
	}
	if err := c.Validate(); err != nil {
		return device.AuditEntry{}, err
	}
	e := device.AuditEntry{Action: device.AuditSetStatus, DeviceID: c.DeviceID, AppID: c.AppID, To: c.Status,
		Actor: c.Actor, Reason: c.Reason, At: c.At.UTC()}
	err := inTx(ctx, s.db, "setting status", func(tx pgx.Tx) error {
		from, err := lockDevice(ctx, tx, c.DeviceID)
		if err != nil {
			return err
		}
		if c.AppID == "" {
			if _, err := tx.Exec(ctx, `UPDATE devices SET status = $2 WHERE id = $1`, c.DeviceID, string(c.Status)); err != nil {
				return dbError("setting device status", err)
			}
		} else {
			err := tx.QueryRow(ctx, `SELECT status FROM device_apps WHERE device_id = $1 AND app_id = $2 FOR UPDATE`, c.DeviceID, c.AppID).Scan(&from)
			if errors.Is(err, pgx.ErrNoRows) {
				return device.ErrNotFound
			}
			if err != nil {
				return dbError("reading app status", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE device_apps SET status = $3 WHERE device_id = $1 AND app_id = $2`, c.DeviceID, c.AppID, string(c.Status)); err != nil {
				return dbError("setting app status", err)
			}
		}
		e.From = from
		return insertAudit(ctx, tx, &e)
	})
	if err != nil {
		return device.AuditEntry{}, err
	}
	return e, nil
}

// insertAudit appends e to the audit trail and sets its Seq.
func insertAudit(ctx context.Context, tx pgx.Tx, e *device.AuditEntry) error {
	var policy []byte
	if e.Policy != nil {
		b, err := json.Marshal(e.Policy)
		if err != nil {
			return fmt.Errorf("moat/postgres: encoding policy: %w", err)
		}
		policy = b
	}
	var seq int64
	err := tx.QueryRow(ctx, `
INSERT INTO device_audit (action, at, actor, reason, device_id, app_id, platform, from_status, to_status, policy)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING seq`,
		string(e.Action), e.At, e.Actor, e.Reason, e.DeviceID, e.AppID, e.Platform, string(e.From), string(e.To), policy).Scan(&seq)
	if err != nil {
		return dbError("recording audit entry", err)
	}
	e.Seq = uint64(seq)
	return nil
}

// Unregister implements [device.StatusLog]. One transaction: lock the
// device row, refuse with [device.ErrBlocked] when it or an app on it is
// not active, delete it (its apps go with it), append the audit entry.
func (s *Devices) Unregister(ctx context.Context, u device.Unregistration) (device.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return device.AuditEntry{}, err
	}
	if err := u.Validate(); err != nil {
		return device.AuditEntry{}, err
	}
	e := device.AuditEntry{Action: device.AuditUnregister, DeviceID: u.DeviceID, Actor: u.Actor, Reason: u.Reason, At: u.At.UTC()}
	err := inTx(ctx, s.db, "unregistering device", func(tx pgx.Tx) error {
		st, err := lockDevice(ctx, tx, u.DeviceID)
		if err != nil {
			return err
		}
		var blockedApps bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM device_apps WHERE device_id = $1 AND status <> 'active')`, u.DeviceID).Scan(&blockedApps); err != nil {
			return dbError("reading app statuses", err)
		}
		if st != device.Active || blockedApps {
			return device.ErrBlocked
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = $1`, u.DeviceID); err != nil {
			return dbError("unregistering device", err)
		}
		e.From = st
		return insertAudit(ctx, tx, &e)
	})
	if err != nil {
		return device.AuditEntry{}, err
	}
	return e, nil
}

// Audit implements [device.StatusLog]. Entries of changes that commit
// concurrently on different devices may become visible slightly out of
// Seq order; entries of one device never do.
func (s *Devices) Audit(ctx context.Context, q device.AuditQuery) ([]device.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Before > 1<<63-1 {
		q.Before = 0
	}
	rows, err := s.db.Query(ctx, `
SELECT seq, action, at, actor, reason, device_id, app_id, platform, from_status, to_status, policy
FROM device_audit
WHERE ($1::text = '' OR device_id = $1::text)
  AND ($2::text = '' OR app_id = $2::text)
  AND ($3::bigint = 0 OR seq < $3::bigint)
ORDER BY seq DESC
LIMIT $4::bigint`, q.DeviceID, q.AppID, int64(q.Before), device.PageLimit(q.Limit))
	if err != nil {
		return nil, dbError("reading audit trail", err)
	}
	defer rows.Close()
	out := []device.AuditEntry{}
	for rows.Next() {
		var e device.AuditEntry
		var seq int64
		var action, from, to string
		var policy []byte
		if err := rows.Scan(&seq, &action, &e.At, &e.Actor, &e.Reason, &e.DeviceID, &e.AppID, &e.Platform, &from, &to, &policy); err != nil {
			return nil, dbError("reading audit trail", err)
		}
		e.Seq, e.Action, e.From, e.To, e.At = uint64(seq), device.AuditAction(action), device.Status(from), device.Status(to), e.At.UTC()
		if policy != nil {
			var p device.Policy
			if err := json.Unmarshal(policy, &p); err != nil {
				return nil, fmt.Errorf("moat/postgres: decoding audited policy: %w", err)
			}
			e.Policy = &p
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("reading audit trail", err)
	}
	return out, nil
}

// Policy implements [device.PolicyStore].
func (s *Devices) Policy(ctx context.Context, appID, platform string) (device.Policy, error) {
	if err := ctx.Err(); err != nil {
		return device.Policy{}, err
	}
	var b []byte
	err := s.db.QueryRow(ctx, `SELECT policy FROM version_policies WHERE app_id = $1 AND platform = $2`, appID, platform).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return device.Policy{}, device.ErrNotFound
	}
	if err != nil {
		return device.Policy{}, dbError("reading version policy", err)
	}
	return decodePolicy(b)
}

func decodePolicy(b []byte) (device.Policy, error) {
	var p device.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return device.Policy{}, fmt.Errorf("moat/postgres: decoding version policy: %w", err)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, nil
}

// Policies implements [device.PolicyStore].
func (s *Devices) Policies(ctx context.Context) ([]device.Policy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT policy FROM version_policies ORDER BY app_id, platform`)
	if err != nil {
		return nil, dbError("reading version policies", err)
	}
	defer rows.Close()
	out := []device.Policy{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, dbError("reading version policies", err)
		}
		p, err := decodePolicy(b)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("reading version policies", err)
	}
	return out, nil
}

// SetPolicy implements [device.PolicyStore]. One transaction: upsert the
// policy, append the audit entry.
func (s *Devices) SetPolicy(ctx context.Context, c device.PolicyChange) (device.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return device.AuditEntry{}, err
	}
	if err := c.Validate(); err != nil {
		return device.AuditEntry{}, err
	}
	p := c.Policy
	p.UpdatedAt, p.UpdatedBy = c.At.UTC(), c.Actor
	b, err := json.Marshal(p)
	if err != nil {
		return device.AuditEntry{}, fmt.Errorf("moat/postgres: encoding version policy: %w", err)
	}
	// The entry carries its own decoded copy: the caller's slices and maps
	// stay the caller's.
	stored, err := decodePolicy(b)
	if err != nil {
		return device.AuditEntry{}, err
	}
	e := device.AuditEntry{Action: device.AuditSetPolicy, AppID: p.AppID, Platform: p.Platform, Policy: &stored,
		Actor: c.Actor, Reason: c.Reason, At: c.At.UTC()}
	err = inTx(ctx, s.db, "storing version policy", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO version_policies (app_id, platform, policy) VALUES ($1, $2, $3)
ON CONFLICT (app_id, platform) DO UPDATE SET policy = EXCLUDED.policy`, p.AppID, p.Platform, b); err != nil {
			return dbError("storing version policy", err)
		}
		return insertAudit(ctx, tx, &e)
	})
	if err != nil {
		return device.AuditEntry{}, err
	}
	return e, nil
}

// DeletePolicy implements [device.PolicyStore]. One transaction: DELETE
// ... RETURNING the removed policy, then the audit entry (none when
// nothing was removed).
func (s *Devices) DeletePolicy(ctx context.Context, r device.PolicyRemoval) (device.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return device.AuditEntry{}, err
	}
	if err := r.Validate(); err != nil {
		return device.AuditEntry{}, err
	}
	var e device.AuditEntry
	err := inTx(ctx, s.db, "deleting version policy", func(tx pgx.Tx) error {
		var b []byte
		err := tx.QueryRow(ctx, `DELETE FROM version_policies WHERE app_id = $1 AND platform = $2 RETURNING policy`, r.AppID, r.Platform).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return dbError("deleting version policy", err)
		}
		p, err := decodePolicy(b)
		if err != nil {
			return err
		}
		e = device.AuditEntry{Action: device.AuditDeletePolicy, AppID: r.AppID, Platform: r.Platform, Policy: &p,
			Actor: r.Actor, Reason: r.Reason, At: r.At.UTC()}
		return insertAudit(ctx, tx, &e)
	})
	if err != nil {
		return device.AuditEntry{}, err
	}
	return e, nil
}
