package pinning

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// RefresherConfig configures a [Refresher].
type RefresherConfig struct {
	// URL is the document's address, usually the server's origin plus
	// [WellKnownPath]. Required; https, or http to a loopback address
	// (the signature, not the channel, protects the document).
	URL string
	// Keys are the publisher's public keys (ECDSA P-256 or Ed25519).
	// Required: a document no key verifies is refused.
	Keys []crypto.PublicKey
	// Initial is the set in force until a document is verified: the one
	// built into the app. Required. A document whose version is below
	// Initial's is refused, so shipping a newer app resets stale state.
	Initial *Set
	// Store keeps the last good document across restarts. Required; use
	// &MemoryStore{} to keep nothing.
	Store DocumentStore
	// Client fetches the document. Nil means a client with a 30-second
	// timeout over http.DefaultTransport. Prefer an unpinned client: the
	// document is signed, and a refresh must still work when the pins in
	// force are the problem.
	Client *http.Client
	// Interval is the time between refreshes after a success. Zero means
	// one hour.
	Interval time.Duration
	// RetryInterval is the time before the next try after a failure. Zero
	// means five minutes.
	RetryInterval time.Duration
	// Now returns the current time, for document expiry. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives refresh failures in [Refresher.Run]. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// A Refresher keeps a client's pin set current from the document its
// server publishes. It is a [Source]: give it to [Config].Pins, and every
// handshake uses the newest good set. [Refresher.Refresh] fetches once;
// [Refresher.Run] refreshes in the background until its context ends.
//
// A fetched document is accepted only if a trusted key verifies its
// signature, it has not expired, and its version is not below the set in
// force (an equal version is a no-op). An accepted document is saved
// before the next handshake uses it. Anything else leaves the set in
// force untouched: a failed refresh never weakens pinning.
type Refresher struct {
	url      string
	keys     []crypto.PublicKey
	store    DocumentStore
	client   *http.Client
	interval time.Duration
	retry    time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex // serializes Refresh
	current atomic.Pointer[Set]
}

var _ Source = (*Refresher)(nil)

// fetchTimeout bounds one fetch with the default client.
const fetchTimeout = 30 * time.Second

// NewRefresher checks cfg and loads the last good document from the store.
// A stored document is used when its signature verifies and its version
// is at least Initial's, even if it has expired since (it is still the
// newest set known; its AfterExpiry applies). One that does not verify is
// ignored with a warning (Initial is used). A store error other than
// [ErrNotFound] is returned: the caller decides whether to run on Initial.
func NewRefresher(ctx context.Context, cfg RefresherConfig) (*Refresher, error) {
	if err := checkURL("document", cfg.URL); err != nil {
		return nil, err
	}
	switch {
	case len(cfg.Keys) == 0:
		return nil, fmt.Errorf("%w: RefresherConfig.Keys is required", ErrUnsupportedKey)
	case cfg.Initial == nil:
		return nil, fmt.Errorf("%w: RefresherConfig.Initial is required", ErrInvalidSet)
	case cfg.Store == nil:
		return nil, errors.New("moat/pinning: RefresherConfig.Store is required")
	case cfg.Interval < 0 || cfg.RetryInterval < 0:
		return nil, errors.New("moat/pinning: refresh intervals must not be negative")
	}
	for _, k := range cfg.Keys {
		if _, err := keyAlgorithm(k); err != nil {
			return nil, err
		}
	}
	r := &Refresher{
		url: cfg.URL, keys: append([]crypto.PublicKey(nil), cfg.Keys...), store: cfg.Store, client: cfg.Client,
		interval: cfg.Interval, retry: cfg.RetryInterval, now: cfg.Now, log: cfg.Logger,
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: fetchTimeout}
	}
	if r.interval == 0 {
		r.interval = time.Hour
	}
	if r.retry == 0 {
		r.retry = 5 * time.Minute
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.current.Store(cfg.Initial)

	saved, err := cfg.Store.Load(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		doc, err := ParseDocument(saved, r.keys)
		switch {
		case err != nil:
			r.log.Warn("moat/pinning: ignoring the saved pin-set document", "error", err)
		case doc.Set.Version() >= cfg.Initial.Version():
			r.current.Store(doc.Set)
		}
	}
	return r, nil
}

// Current returns the set in force. It implements [Source].
func (r *Refresher) Current() *Set { return r.current.Load() }

// Refresh fetches the document once and, if it is acceptable (see
// [Refresher]), saves it and puts its set in force. It returns
// [ErrStaleDocument] for a version below the set in force,
// [ErrDocumentExpired], the errors of [ParseDocument], or the fetch or
// store error. If the store fails, the verified set is put in force anyway
// and the error returned.
func (r *Refresher) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	doc, err := ParseDocument(data, r.keys)
	if err != nil {
		return err
	}
	cur := r.current.Load()
	switch v := doc.Set.Version(); {
	case doc.Set.Expired(r.now()):
		return fmt.Errorf("%w: version %d expired at %s", ErrDocumentExpired, v, doc.Set.Expires().Format(time.RFC3339))
	case v < cur.Version():
		return fmt.Errorf("%w: version %d is below the current %d", ErrStaleDocument, v, cur.Version())
	case v == cur.Version():
		return nil
	}
	saveErr := r.store.Save(ctx, doc.raw)
	r.current.Store(doc.Set)
	if saveErr != nil {
		return fmt.Errorf("moat/pinning: pin set version %d in force but not saved: %w", doc.Set.Version(), saveErr)
	}
	return nil
}

func (r *Refresher) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", DocumentContentType)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: fetching pin-set document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("moat/pinning: fetching pin-set document: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: fetching pin-set document: %w", err)
	}
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidDocument, MaxDocumentBytes)
	}
	return data, nil
}

// Run refreshes at once and then every Interval (RetryInterval after a
// failure, which is logged) until ctx ends, and returns ctx's error. Start
// it with go r.Run(ctx).
func (r *Refresher) Run(ctx context.Context) error {
	for {
		wait := r.interval
		if err := r.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("moat/pinning: refreshing the pin set failed", "url", r.url, "error", err)
			wait = r.retry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
