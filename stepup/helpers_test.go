package stepup_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/kv/kvtest"
	"github.com/moatsec/moat/stepup"
)

// env is one test's world: a fake clock shared by the store and the
// requests, and an in-memory kv store.
type env struct {
	clock *kvtest.Clock
	store *kv.Memory
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := kvtest.NewClock()
	return &env{clock: c, store: kv.NewMemory(kv.MemoryConfig{Now: c.Now})}
}

// req builds a check request at the clock's time.
func (e *env) req(subject, session string, answer any) *auth.CheckRequest {
	r := &auth.CheckRequest{
		Client:    &auth.Client{ID: "client-1", AppID: "travel", Channel: "phone", DeviceID: "device-1"},
		Subject:   subject,
		SessionID: session,
		Now:       e.clock.Now(),
	}
	switch a := answer.(type) {
	case nil:
	case string:
		r.Answer = json.RawMessage(a)
	default:
		b, err := json.Marshal(a)
		if err != nil {
			panic(err)
		}
		r.Answer = b
	}
	return r
}

var (
	testHasherOnce sync.Once
	testHasher     *stepup.PasswordHasher
)

// weakHasher returns a hasher with test-only parameters: fast under -race.
func weakHasher(t testing.TB) *stepup.PasswordHasher {
	t.Helper()
	testHasherOnce.Do(func() {
		h, err := stepup.NewPasswordHasher(stepup.HasherConfig{
			Params:             stepup.Argon2idParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
			InsecureWeakParams: true,
		})
		if err != nil {
			panic(err)
		}
		testHasher = h
	})
	return testHasher
}

// failingStore is a kv.Store whose every call fails, to check that store
// errors fail closed.
type failingStore struct{ kv.Store }

var errStoreDown = errorString("store down")

type errorString string

func (e errorString) Error() string { return string(e) }

func (failingStore) Get(context.Context, string) (kv.Item, error) { return kv.Item{}, errStoreDown }
func (failingStore) Set(context.Context, string, []byte, time.Duration) (uint64, error) {
	return 0, errStoreDown
}
func (failingStore) CompareAndSet(context.Context, string, []byte, time.Duration, uint64) (uint64, error) {
	return 0, errStoreDown
}
func (failingStore) Delete(context.Context, string) error { return errStoreDown }
func (failingStore) Consume(context.Context, string) (kv.Item, error) {
	return kv.Item{}, errStoreDown
}
func (failingStore) Increment(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errStoreDown
}

func requireStatus(t *testing.T, want auth.CheckStatus, got auth.CheckResult, err error) {
	t.Helper()
	require.NoError(t, err)
	require.Equal(t, want.String(), got.Status.String(), "reason %q", got.Reason)
}

// challengeJSON returns a challenge as a generic JSON object.
func challengeJSON(t *testing.T, r auth.CheckResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(r.Challenge)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}
