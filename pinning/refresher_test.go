package pinning

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/kv/kvtest"
)

// docServer publishes whatever document the test puts in it.
type docServer struct {
	srv     *httptest.Server
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int64
}

func newDocServer(t testing.TB) *docServer {
	t.Helper()
	d := &docServer{}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fetches.Add(1)
		b := d.doc.Load()
		if b == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", DocumentContentType)
		_, _ = w.Write(*b)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *docServer) publish(b []byte) { d.doc.Store(&b) }

// failingStore is a DocumentStore whose calls fail.
type failingStore struct{ err error }

func (f failingStore) Load(context.Context) ([]byte, error) { return nil, f.err }
func (f failingStore) Save(context.Context, []byte) error   { return f.err }

type refresherWorld struct {
	key     crypto.Signer
	initial *Set
	server  *docServer
	clock   *kvtest.Clock
}

func newRefresherWorld(t testing.TB) *refresherWorld {
	return &refresherWorld{key: newKey(t), initial: setFor(t, "api.example.com", randomPin(t), randomPin(t)), server: newDocServer(t), clock: kvtest.NewClock()}
}

func (w *refresherWorld) config(store DocumentStore) RefresherConfig {
	return RefresherConfig{
		URL: w.server.srv.URL + WellKnownPath, Keys: []crypto.PublicKey{w.key.Public()}, Initial: w.initial,
		Store: store, Client: w.server.srv.Client(), Now: w.clock.Now, Logger: quietLogger(),
	}
}

func (w *refresherWorld) refresher(t testing.TB, store DocumentStore) *Refresher {
	t.Helper()
	r, err := NewRefresher(context.Background(), w.config(store))
	require.NoError(t, err)
	return r
}

func TestRefresherAcceptsNewerRefusesOlder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newRefresherWorld(t)
	store := &MemoryStore{}
	r := w.refresher(t, store)
	require.Same(t, w.initial, r.Current())

	require.Error(t, r.Refresh(ctx), "nothing published yet")
	require.Same(t, w.initial, r.Current())

	v2 := mustSign(t, publishable(t, 2), w.key)
	w.server.publish(v2.Raw())
	require.NoError(t, r.Refresh(ctx))
	require.Equal(t, uint64(2), r.Current().Version())
	saved, err := store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, v2.Raw(), saved)

	same := r.Current()
	require.NoError(t, r.Refresh(ctx), "the same version again is a no-op")
	require.Same(t, same, r.Current())

	w.server.publish(mustSign(t, publishable(t, 1), w.key).Raw())
	require.ErrorIs(t, r.Refresh(ctx), ErrStaleDocument, "a rollback is refused")
	require.Equal(t, uint64(2), r.Current().Version())

	w.server.publish(mustSign(t, publishable(t, 3), newKey(t)).Raw())
	require.ErrorIs(t, r.Refresh(ctx), ErrBadSignature)
	require.Equal(t, uint64(2), r.Current().Version())

	w.server.publish([]byte("not a document"))
	require.ErrorIs(t, r.Refresh(ctx), ErrInvalidDocument)

	w.server.publish(mustSign(t, publishable(t, 4), w.key).Raw())
	w.clock.Advance(31 * 24 * time.Hour)
	require.ErrorIs(t, r.Refresh(ctx), ErrDocumentExpired)
	require.Equal(t, uint64(2), r.Current().Version())
}

func TestRefresherKeepsLastGoodAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newRefresherWorld(t)
	path := filepath.Join(t.TempDir(), "pins.jws")
	store, err := NewFileStore(path)
	require.NoError(t, err)

	r := w.refresher(t, store)
	v5 := mustSign(t, publishable(t, 5), w.key)
	w.server.publish(v5.Raw())
	require.NoError(t, r.Refresh(ctx))

	// Restart: the saved document is in force before any fetch, and an
	// older one published since (a rollback) is refused.
	w.server.publish(mustSign(t, publishable(t, 4), w.key).Raw())
	again := w.refresher(t, store)
	require.Equal(t, uint64(5), again.Current().Version())
	require.ErrorIs(t, again.Refresh(ctx), ErrStaleDocument)

	// A saved document that has expired since is still the newest known.
	w.clock.Advance(60 * 24 * time.Hour)
	require.Equal(t, uint64(5), w.refresher(t, store).Current().Version())

	// An app update that ships a newer built-in set wins over the saved one.
	newer, err := NewSet(SetConfig{Version: 6, Rules: w.initial.Rules()})
	require.NoError(t, err)
	cfg := w.config(store)
	cfg.Initial = newer
	r6, err := NewRefresher(ctx, cfg)
	require.NoError(t, err)
	require.Same(t, newer, r6.Current())

	// A tampered file is ignored: the built-in set is used.
	require.NoError(t, os.WriteFile(path, []byte("tampered"), 0o600))
	require.Same(t, w.initial, w.refresher(t, store).Current())
	other := mustSign(t, publishable(t, 9), newKey(t))
	require.NoError(t, os.WriteFile(path, other.Raw(), 0o600))
	require.Same(t, w.initial, w.refresher(t, store).Current(), "a document signed by another key is ignored")
}

func TestRefresherStoreErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newRefresherWorld(t)
	boom := errors.New("disk on fire")
	_, err := NewRefresher(ctx, w.config(failingStore{boom}))
	require.ErrorIs(t, err, boom, "a store that cannot load is reported, not ignored")

	// A verified document goes in force even if it cannot be saved.
	store := &flakyStore{}
	r := w.refresher(t, store)
	store.fail.Store(true)
	w.server.publish(mustSign(t, publishable(t, 2), w.key).Raw())
	require.ErrorIs(t, r.Refresh(ctx), boomSave)
	require.Equal(t, uint64(2), r.Current().Version())
}

var boomSave = errors.New("save failed")

type flakyStore struct {
	MemoryStore
	fail atomic.Bool
}

func (f *flakyStore) Save(ctx context.Context, b []byte) error {
	if f.fail.Load() {
		return boomSave
	}
	return f.MemoryStore.Save(ctx, b)
}

func TestNewRefresherValidation(t *testing.T) {
	t.Parallel()
	w := newRefresherWorld(t)
	for name, edit := range map[string]func(c *RefresherConfig){
		"no URL":        func(c *RefresherConfig) { c.URL = "" },
		"plain http":    func(c *RefresherConfig) { c.URL = "http://example.com" + WellKnownPath },
		"no keys":       func(c *RefresherConfig) { c.Keys = nil },
		"bad key":       func(c *RefresherConfig) { c.Keys = []crypto.PublicKey{"key"} },
		"no initial":    func(c *RefresherConfig) { c.Initial = nil },
		"no store":      func(c *RefresherConfig) { c.Store = nil },
		"negative wait": func(c *RefresherConfig) { c.Interval = -time.Second },
	} {
		cfg := w.config(&MemoryStore{})
		edit(&cfg)
		_, err := NewRefresher(context.Background(), cfg)
		require.Error(t, err, name)
	}
}

func TestRefresherRun(t *testing.T) {
	t.Parallel()
	w := newRefresherWorld(t)
	cfg := w.config(&MemoryStore{})
	cfg.Interval, cfg.RetryInterval = time.Millisecond, time.Millisecond
	r, err := NewRefresher(context.Background(), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	waitFor(t, func() bool { return w.server.fetches.Load() >= 2 }) // failures are retried
	w.server.publish(mustSign(t, publishable(t, 3), w.key).Raw())
	waitFor(t, func() bool { return r.Current().Version() == 3 })
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// A pinned client whose pins come from a Refresher follows the published
// set: the server moves to its backup key, publishes a set pinning it, and
// the client keeps connecting.
func TestRefresherAsSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := newRoot(t, "Root")
	oldCert := root.leaf(t, []string{"127.0.0.1"})
	newCert := root.leaf(t, []string{"127.0.0.1"})
	w := newRefresherWorld(t)
	w.initial = setFor(t, "127.0.0.1", PinOf(oldCert.Leaf), randomPin(t))
	r := w.refresher(t, &MemoryStore{})
	client, err := NewClient(r, pool(root))
	require.NoError(t, err)

	srv := startServer(t, newCert, false)
	_, err = get(t, client, srv.URL)
	require.ErrorIs(t, err, ErrPinMismatch)

	set, err := NewSet(SetConfig{Version: 2, Expires: testNow.Add(time.Hour), AfterExpiry: KeepEnforcing,
		Rules: []Rule{{Pattern: "127.0.0.1", Pins: []Pin{PinOf(newCert.Leaf), randomPin(t)}}}})
	require.NoError(t, err)
	w.server.publish(mustSign(t, set, w.key).Raw())
	require.NoError(t, r.Refresh(ctx))
	_, err = get(t, client, srv.URL)
	require.NoError(t, err)
}
