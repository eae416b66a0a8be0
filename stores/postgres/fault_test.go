package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/update"
)

// closedPortPool returns a pool pointed at a local port nothing listens
// on.
func closedPortPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("postgres://moat@%s/moat?sslmode=disable&connect_timeout=2", addr))
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// secret is put into every argument that could be secret; no error may
// repeat it.
const secret = "s3cr3t-value"

// TestDatabaseDown: with PostgreSQL unreachable every method fails, in
// bounded time, with an error that is neither a miss nor a conflict (so
// callers fail closed, answering 503) and that repeats no argument.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	pool := closedPortPool(t)
	s := newStores(pool, Config{})
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	refusals := []error{
		auth.ErrNotFound, auth.ErrClientExists, device.ErrNotFound, device.ErrBlocked, device.ErrFull,
		stepup.ErrNotFound, stepup.ErrReplay, attest.ErrNotFound, attest.ErrKeyExists, attest.ErrCounterConflict,
		update.ErrNotFound, update.ErrConflict, kv.ErrNotFound, kv.ErrConflict, kv.ErrNotCounter,
	}
	calls := map[string]func(ctx context.Context) error{
		"Migrate":     func(ctx context.Context) error { return Migrate(ctx, pool) },
		"CheckSchema": func(ctx context.Context) error { return CheckSchema(ctx, pool) },
		"New":         func(ctx context.Context) error { _, err := New(ctx, pool, Config{}); return err },

		"CreateClient": func(ctx context.Context) error {
			return s.Clients().CreateClient(ctx, &auth.Client{ID: secret, SecretHash: secret})
		},
		"Client":       func(ctx context.Context) error { _, err := s.Clients().Client(ctx, secret); return err },
		"DeleteClient": func(ctx context.Context) error { return s.Clients().DeleteClient(ctx, secret) },

		"Seen": func(ctx context.Context) error {
			return s.Devices().Seen(ctx, device.Sighting{DeviceID: secret, AppID: secret, UserID: secret, At: at})
		},
		"State":  func(ctx context.Context) error { _, err := s.Devices().State(ctx, secret, secret); return err },
		"Device": func(ctx context.Context) error { _, err := s.Devices().Device(ctx, secret); return err },
		"Search": func(ctx context.Context) error {
			_, err := s.Devices().Search(ctx, device.Query{UserID: secret})
			return err
		},
		"SetStatus": func(ctx context.Context) error {
			_, err := s.Devices().SetStatus(ctx, device.StatusChange{DeviceID: secret, Status: device.Lost, Actor: "op", Reason: secret, At: at})
			return err
		},
		"Unregister": func(ctx context.Context) error {
			_, err := s.Devices().Unregister(ctx, device.Unregistration{DeviceID: secret, Actor: "op", Reason: secret, At: at})
			return err
		},
		"Audit": func(ctx context.Context) error {
			_, err := s.Devices().Audit(ctx, device.AuditQuery{DeviceID: secret})
			return err
		},
		"Policy":   func(ctx context.Context) error { _, err := s.Devices().Policy(ctx, secret, "ios"); return err },
		"Policies": func(ctx context.Context) error { _, err := s.Devices().Policies(ctx); return err },
		"SetPolicy": func(ctx context.Context) error {
			_, err := s.Devices().SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{AppID: secret, Platform: "ios"}, Actor: "op", Reason: secret, At: at})
			return err
		},
		"DeletePolicy": func(ctx context.Context) error {
			_, err := s.Devices().DeletePolicy(ctx, device.PolicyRemoval{AppID: secret, Platform: "ios", Actor: "op", Reason: secret, At: at})
			return err
		},

		"OTP.Get": func(ctx context.Context) error { _, err := s.OTP().Get(ctx, secret, stepup.KindTOTP); return err },
		"OTP.Put": func(ctx context.Context) error {
			return s.OTP().Put(ctx, stepup.OTPEnrollment{Subject: secret, Kind: stepup.KindTOTP, ID: secret, SealedSecret: []byte(secret)})
		},
		"OTP.Advance": func(ctx context.Context) error { return s.OTP().Advance(ctx, secret, stepup.KindTOTP, secret, 1) },
		"OTP.Delete":  func(ctx context.Context) error { return s.OTP().Delete(ctx, secret, stepup.KindTOTP) },
		"PIN.Get":     func(ctx context.Context) error { _, err := s.PINs().Get(ctx, secret); return err },
		"PIN.Put": func(ctx context.Context) error {
			return s.PINs().Put(ctx, stepup.PINRecord{DeviceID: secret, Subject: secret, Hash: secret})
		},
		"PIN.Delete":       func(ctx context.Context) error { return s.PINs().Delete(ctx, secret) },
		"Recovery.Replace": func(ctx context.Context) error { return s.Recovery().Replace(ctx, secret, [][]byte{[]byte(secret)}) },
		"Recovery.Use":     func(ctx context.Context) error { return s.Recovery().Use(ctx, secret, []byte(secret)) },
		"Recovery.Count":   func(ctx context.Context) error { _, err := s.Recovery().Count(ctx, secret); return err },
		"DeviceKey.Get":    func(ctx context.Context) error { _, err := s.DeviceKeys().Get(ctx, secret); return err },
		"DeviceKey.Put": func(ctx context.Context) error {
			return s.DeviceKeys().Put(ctx, stepup.DeviceKey{ClientID: secret, Subject: secret, PublicKey: &priv.PublicKey})
		},
		"DeviceKey.Delete": func(ctx context.Context) error { return s.DeviceKeys().Delete(ctx, secret) },

		"CreateKey": func(ctx context.Context) error {
			return s.AttestKeys().CreateKey(ctx, attest.KeyRecord{KeyID: []byte(secret), PublicKey: []byte(secret), Receipt: []byte(secret)})
		},
		"Key":           func(ctx context.Context) error { _, err := s.AttestKeys().Key(ctx, []byte(secret)); return err },
		"UpdateCounter": func(ctx context.Context) error { return s.AttestKeys().UpdateCounter(ctx, []byte(secret), 0, 1) },
		"DeleteKey":     func(ctx context.Context) error { return s.AttestKeys().DeleteKey(ctx, []byte(secret)) },

		"Releases": func(ctx context.Context) error { _, err := s.Updates().Releases(ctx, "app", "ios"); return err },
		"Create":   func(ctx context.Context) error { _, err := s.Updates().Create(ctx, "app", "ios", 1); return err },
		"OpenBundle": func(ctx context.Context) error {
			_, _, err := s.Updates().OpenBundle(ctx, "app", "ios", 1, 0)
			return err
		},
		"DeleteAbandoned": func(ctx context.Context) error { _, err := s.Updates().DeleteAbandoned(ctx, at); return err },

		"KV.Get": func(ctx context.Context) error { _, err := s.KV().Get(ctx, secret); return err },
		"KV.Set": func(ctx context.Context) error {
			_, err := s.KV().Set(ctx, secret, []byte(secret), time.Minute)
			return err
		},
		"KV.CompareAndSet": func(ctx context.Context) error {
			_, err := s.KV().CompareAndSet(ctx, secret, []byte(secret), time.Minute, 0)
			return err
		},
		"KV.CompareAndSetVersion": func(ctx context.Context) error {
			_, err := s.KV().CompareAndSet(ctx, secret, []byte(secret), time.Minute, 7)
			return err
		},
		"KV.Delete":        func(ctx context.Context) error { return s.KV().Delete(ctx, secret) },
		"KV.Consume":       func(ctx context.Context) error { _, err := s.KV().Consume(ctx, secret); return err },
		"KV.Increment":     func(ctx context.Context) error { _, err := s.KV().Increment(ctx, secret, 1, time.Minute); return err },
		"KV.DeleteExpired": func(ctx context.Context) error { _, err := s.KV().DeleteExpired(ctx); return err },
	}
	const bound = 10 * time.Second
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The context outlives the bound: the failure must come from
			// the unreachable server, not from a deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 3*bound)
			defer cancel()
			start := time.Now()
			err := call(ctx)
			require.Less(t, time.Since(start), bound, "a failure must come quickly")
			require.Error(t, err, "a call to a database that is down cannot succeed")
			for _, r := range refusals {
				require.False(t, errors.Is(err, r), "%v is not %v", err, r)
			}
			require.False(t, errors.Is(err, context.DeadlineExceeded))
			require.True(t, strings.HasPrefix(err.Error(), "moat/postgres: "), "error %q lacks the package prefix", err)
			require.NotContains(t, err.Error(), secret)
		})
	}
}

// TestDatabaseDownMidPublish: a release writer and a bundle reader whose
// database goes away fail; a reader never reports a clean end of file.
func TestDatabaseDownMidPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := &Updates{db: closedPortPool(t), chunkSize: 4}
	w := &releaseWriter{s: u, upload: 1, app: "app", platform: "ios", version: 2, bundles: map[uint64]*bundleWriter{}}
	bw, err := w.Bundle(ctx, 0)
	require.NoError(t, err, "opening a bundle needs no database")
	_, err = bw.Write([]byte("12345678"))
	require.Error(t, err, "a full chunk cannot be stored")
	require.NotContains(t, err.Error(), "1234")
	require.Error(t, bw.Close())
	require.Error(t, w.Commit(ctx, update.Release{App: "app", Platform: "ios", Version: 2, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{Size: 8, ETag: `"e"`}}}))

	w2 := &releaseWriter{s: u, upload: 2, app: "app", platform: "ios", version: 2, bundles: map[uint64]*bundleWriter{}}
	bw2, err := w2.Bundle(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, bw2.Close(), "an empty bundle writes no chunk")
	err = w2.Commit(ctx, update.Release{App: "app", Platform: "ios", Version: 2, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{Size: 0, ETag: `"e"`}}})
	require.Error(t, err)
	require.NotErrorIs(t, err, update.ErrConflict)
	require.Error(t, w2.Abort(ctx), "the staged upload could not be removed")

	r := &bundleReader{ctx: ctx, db: u.db, upload: 1, size: 10, chunkSize: 4, loaded: -1}
	n, err := r.Read(make([]byte, 4))
	require.Zero(t, n)
	require.Error(t, err)
	require.NotErrorIs(t, err, io.EOF)
}
