package device

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/moatsec/moat/kv"
)

// Defaults of [Config].
const (
	DefaultCacheTTL  = 2 * time.Second
	DefaultCacheSize = 100_000
	DefaultNoticeTTL = 30 * 24 * time.Hour
	// DefaultDeviceMessage is the message a device refusal carries when
	// Config.DeviceMessage is empty.
	DefaultDeviceMessage = "Access from this device has been blocked. Please contact support."
)

// Config configures [New]. Store and KV are required; every other zero
// value is safe and documented.
type Config struct {
	// Store holds devices, statuses, the audit trail and version policies.
	// Required.
	Store Store

	// KV remembers which clients were shown which notice, so that each
	// client sees a notice once (across instances when KV is shared).
	// Required.
	KV kv.Store

	// Invalidator carries cache invalidations between instances. Nil means
	// a private [LocalInvalidator]: a change made through this Control
	// takes effect at once in this process; other instances sharing Store
	// see it after CacheTTL.
	Invalidator Invalidator

	// CacheTTL is how long a status or policy read is reused. Zero means
	// DefaultCacheTTL; a negative value disables the cache (every check
	// reads the store). Entries are timed by a clock refreshed every
	// CacheTTL/4, so one may live up to 1.25 CacheTTL. Changes made
	// through a Control reach its own cache (and, through Invalidator,
	// others) at once, whatever the TTL.
	CacheTTL time.Duration

	// CacheSize bounds the cached device+app states. Zero means
	// DefaultCacheSize.
	CacheSize int

	// NoticeTTL is how long a client is remembered as having seen a
	// notice. Zero means DefaultNoticeTTL.
	NoticeTTL time.Duration

	// DeviceMessage is the message for users of a blocked device, in the
	// default language, with DeviceTranslations by BCP 47 tag. Empty means
	// DefaultDeviceMessage (and no translations).
	DeviceMessage      string
	DeviceTranslations map[string]string

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Logger receives store failures and refusals at debug level. Nil
	// means slog.Default().
	Logger *slog.Logger

	// Observe, when set, is called for every refusal and every notice
	// shown (never for a client that simply passes), for analytics. It
	// runs on the request path and must not block.
	Observe func(ctx context.Context, e Event)
}

// Event is what [Config.Observe] receives.
type Event struct {
	Client Client
	// Refusal is set when the client was refused.
	Refusal *Refusal
	// Notice is set when a notice was shown.
	Notice *Notice
}

// Client is what enforcement knows of the client making a request: from
// its registration and access token, and from the request itself.
type Client struct {
	DeviceID   string
	AppID      string
	Platform   string
	AppVersion string
	// ClientID identifies the registered app instance; notices are shown
	// once per ClientID (an empty one is shown the notice every time).
	ClientID string
	// AttestedVersionCode is the app's version code as a trustworthy
	// attestation verdict reported it (Play Integrity's
	// appIntegrity.versionCode), or 0 when none did. See [Policy].
	AttestedVersionCode int64
	// AcceptLanguage is the request's Accept-Language header; it chooses
	// the language of the operator's message.
	AcceptLanguage string
}

// Info is optional detail about a device the app reports, and the user
// when one is known.
type Info struct {
	Model       string
	OSVersion   string
	DisplayName string
	UserID      string
}

// Control enforces device status and app-version policy, and makes the
// changes to them that operators ask for. It is safe for concurrent use.
type Control struct {
	store         Store
	kv            kv.Store
	inv           Invalidator
	unsubscribe   func()
	ttl           int64 // nanoseconds; <= 0: no cache
	states        *stateCache
	policies      *policyCache
	noticeTTL     time.Duration
	deviceMessage string
	deviceTr      map[string]string
	now           func() time.Time
	coarse        *coarseClock // nil when Config.Now is set
	base          time.Time    // with Config.Now: cache times are nanoseconds since base
	log           *slog.Logger
	observe       func(context.Context, Event)
	shown         shownSet
	closeOnce     sync.Once
}

// New returns a Control. Call Close when done with it, to stop receiving
// invalidations.
func New(cfg Config) (*Control, error) {
	if cfg.Store == nil {
		return nil, errors.New("moat/device: Config.Store is required")
	}
	if cfg.KV == nil {
		return nil, errors.New("moat/device: Config.KV is required (it remembers which clients saw a notice)")
	}
	c := &Control{
		store: cfg.Store, kv: cfg.KV, inv: cfg.Invalidator, noticeTTL: cfg.NoticeTTL,
		deviceMessage: cfg.DeviceMessage, now: cfg.Now, log: cfg.Logger, observe: cfg.Observe,
		states: newStateCache(positiveOr(cfg.CacheSize, DefaultCacheSize)), policies: newPolicyCache(),
	}
	switch {
	case cfg.CacheTTL == 0:
		c.ttl = int64(DefaultCacheTTL)
	case cfg.CacheTTL > 0:
		c.ttl = int64(cfg.CacheTTL)
	}
	if c.noticeTTL <= 0 {
		c.noticeTTL = DefaultNoticeTTL
	}
	if c.deviceMessage == "" {
		c.deviceMessage = DefaultDeviceMessage
	} else if len(cfg.DeviceTranslations) > 0 {
		c.deviceTr = make(map[string]string, len(cfg.DeviceTranslations))
		for k, v := range cfg.DeviceTranslations {
			if !validLanguageTag(k) {
				return nil, fmt.Errorf("moat/device: DeviceTranslations key %q is not a language tag", k)
			}
			c.deviceTr[strings.ToLower(k)] = v
		}
	}
	if c.now == nil {
		c.now = time.Now
		if c.ttl > 0 {
			c.coarse = newCoarseClock(max(time.Millisecond, time.Duration(c.ttl)/4))
			// Stop the timer if the Control is dropped without Close.
			runtime.AddCleanup(c, (*coarseClock).stop, c.coarse)
		}
	}
	c.base = c.now()
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.inv == nil {
		c.inv = &LocalInvalidator{}
	}
	c.unsubscribe = c.inv.Subscribe(c.apply)
	return c, nil
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Close stops receiving invalidations. Checks still work afterwards but
// may use cache entries for up to CacheTTL after a change made elsewhere.
func (c *Control) Close() error {
	c.closeOnce.Do(func() {
		c.unsubscribe()
		if c.coarse != nil {
			c.coarse.stop()
		}
	})
	return nil
}

// apply drops the cache entries an invalidation names.
func (c *Control) apply(inv Invalidation) {
	if inv.All {
		c.states.invalidateAll()
		c.policies.invalidateAll()
		return
	}
	if inv.DeviceID != "" {
		c.states.invalidateDevice(inv.DeviceID)
	}
	if inv.AppID != "" || inv.Platform != "" {
		c.policies.invalidate(inv.AppID, inv.Platform)
	}
}

// Register records a client's registration (creating the device and app
// records on first sight, with info) and then decides like [Control.Allow].
// It returns nil, a *[Refusal], or another error when the store failed
// (answer 503). The attempt of a blocked
// device is recorded too (its LastSeen moves), which tells the operator
// where a stolen device still shows up.
//
// A registration without a device id is refused with device_blocked;
// fields the registry cannot hold (an id longer than [MaxIDLen], control
// characters) refuse it with a *[Refusal] of status 400 and code
// "invalid_request".
func (c *Control) Register(ctx context.Context, cl Client, info Info) error {
	if cl.DeviceID == "" {
		return c.refused(ctx, &cl, newRefusal(CodeDeviceBlocked, "request identifies no device", c.deviceText(&cl), ""))
	}
	s := c.sighting(cl, info)
	if err := s.Validate(); err != nil {
		r := &Refusal{Status: http.StatusBadRequest, Code: "invalid_request", Description: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}
		return c.refused(ctx, &cl, r)
	}
	if err := c.seen(ctx, s); err != nil {
		return err
	}
	_, err := c.check(ctx, &cl, false)
	return err
}

// Seen records that cl was seen again, for example at sign-in when the
// user is known (info.UserID), without deciding anything. Invalid fields
// give an error wrapping [ErrInvalid].
func (c *Control) Seen(ctx context.Context, cl Client, info Info) error {
	return c.seen(ctx, c.sighting(cl, info))
}

func (c *Control) sighting(cl Client, info Info) Sighting {
	return Sighting{
		DeviceID: cl.DeviceID, Platform: cl.Platform, AppID: cl.AppID, AppVersion: cl.AppVersion,
		Model: info.Model, OSVersion: info.OSVersion, DisplayName: info.DisplayName, UserID: info.UserID,
		At: c.now(),
	}
}

func (c *Control) seen(ctx context.Context, s Sighting) error {
	if err := c.store.Seen(ctx, s); err != nil {
		return fmt.Errorf("moat/device: recording device: %w", err)
	}
	// A new device may be cached as unknown here; elsewhere it cannot be
	// cached yet, since no client of it could have been checked.
	c.states.invalidateDevice(s.DeviceID)
	return nil
}

// Allow decides whether cl may go on, without showing notices: for token
// refresh and other places that cannot deliver one. It returns nil, a
// *[Refusal] (device_blocked or app_version_blocked), or another error
// when the store failed (answer 503).
func (c *Control) Allow(ctx context.Context, cl Client) error {
	_, err := c.check(ctx, &cl, false)
	return err
}

// Check decides whether cl may make a protected request: it returns a
// *[Refusal], a store error (answer 503), or nil with, when the client's
// version is below a notify-only minimum and the client has not seen this
// notice yet, the [Notice] to deliver. With a warm cache and no notice, it
// reads no store and does not allocate.
func (c *Control) Check(ctx context.Context, cl Client) (*Notice, error) {
	return c.check(ctx, &cl, true)
}

func (c *Control) check(ctx context.Context, cl *Client, notices bool) (*Notice, error) {
	if cl.DeviceID == "" {
		return nil, c.refused(ctx, cl, newRefusal(CodeDeviceBlocked, "request identifies no device", c.deviceText(cl), ""))
	}
	now := c.clock()
	st, err := c.state(ctx, cl.DeviceID, cl.AppID, now)
	if err != nil {
		return nil, err
	}
	var why string
	switch {
	case !st.found:
		why = "device is not registered; register again"
	case st.st.Status != Active:
		why = "device status is " + string(st.st.Status)
	case st.st.AppStatus != Active:
		why = "app is disabled on this device"
	}
	if why != "" {
		return nil, c.refused(ctx, cl, newRefusal(CodeDeviceBlocked, why, c.deviceText(cl), ""))
	}
	p, err := c.policy(ctx, cl.AppID, cl.Platform, now)
	if err != nil || p == nil {
		return nil, err
	}
	switch p.evaluate(cl.AppVersion, cl.AttestedVersionCode) {
	case block:
		msg := chooseText(cl.AcceptLanguage, p.message, p.translations)
		return nil, c.refused(ctx, cl, newRefusal(CodeAppVersionBlocked, "app version is blocked by the version policy", msg, p.url))
	case notify:
		if notices {
			return c.notice(ctx, cl, p)
		}
	}
	return nil, nil
}

// clock returns the time for cache expiry in nanoseconds: the coarse
// clock's reading, or the injected clock's time since New.
func (c *Control) clock() int64 {
	if c.coarse != nil {
		return c.coarse.read()
	}
	return int64(c.now().Sub(c.base))
}

func (c *Control) deviceText(cl *Client) string {
	return chooseText(cl.AcceptLanguage, c.deviceMessage, c.deviceTr)
}

func (c *Control) refused(ctx context.Context, cl *Client, r *Refusal) error {
	c.log.DebugContext(ctx, "moat/device: refused", "code", r.Code, "reason", r.Description,
		"device", cl.DeviceID, "app", cl.AppID, "platform", cl.Platform, "version", cl.AppVersion)
	if c.observe != nil {
		c.observe(ctx, Event{Client: *cl, Refusal: r})
	}
	return r
}

// state reads the device's state through the cache.
func (c *Control) state(ctx context.Context, device, app string, now int64) (stateEntry, error) {
	if c.ttl > 0 {
		if e, ok := c.states.get(device, app, now); ok {
			return e, nil
		}
	}
	gen := c.states.gen.Load()
	st, err := c.store.State(ctx, device, app)
	e := stateEntry{st: st, found: err == nil, expires: now + c.ttl}
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.log.ErrorContext(ctx, "moat/device: reading device status", "device", device, "error", err)
		return stateEntry{}, fmt.Errorf("moat/device: reading device status: %w", err)
	}
	if c.ttl > 0 {
		c.states.put(device, app, e, gen)
	}
	return e, nil
}

// policy reads the version policy through the cache; nil means none.
func (c *Control) policy(ctx context.Context, app, platform string, now int64) (*compiledPolicy, error) {
	if c.ttl > 0 {
		if e, ok := c.policies.get(app, platform, now); ok {
			return e.p, nil
		}
	}
	gen := c.policies.gen.Load()
	p, err := c.store.Policy(ctx, app, platform)
	var cp *compiledPolicy
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		c.log.ErrorContext(ctx, "moat/device: reading version policy", "app", app, "platform", platform, "error", err)
		return nil, fmt.Errorf("moat/device: reading version policy: %w", err)
	default:
		if cp, err = compilePolicy(p); err != nil {
			c.log.ErrorContext(ctx, "moat/device: stored version policy is invalid", "error", err)
			return nil, err
		}
	}
	if c.ttl > 0 {
		c.policies.put(app, platform, policyEntry{p: cp, expires: now + c.ttl}, gen)
	}
	return cp, nil
}

// notice returns the policy's notice unless cl has already been shown it.
func (c *Control) notice(ctx context.Context, cl *Client, p *compiledPolicy) (*Notice, error) {
	var key [sha256.Size]byte
	if cl.ClientID != "" {
		key = noticeKey(cl.ClientID, p)
		if c.shown.has(key) {
			return nil, nil
		}
		_, err := c.kv.CompareAndSet(ctx, "moat/device/notice/"+hex.EncodeToString(key[:]), []byte{1}, c.noticeTTL, 0)
		if errors.Is(err, kv.ErrConflict) {
			c.shown.add(key)
			return nil, nil
		}
		if err != nil {
			c.log.ErrorContext(ctx, "moat/device: recording a shown notice", "error", err)
			return nil, fmt.Errorf("moat/device: recording a shown notice: %w", err)
		}
		c.shown.add(key)
	}
	n := &Notice{Message: chooseText(cl.AcceptLanguage, p.message, p.translations), DownloadURL: p.url, MinVersion: p.minVersion}
	if c.observe != nil {
		c.observe(ctx, Event{Client: *cl, Notice: n})
	}
	return n, nil
}

// noticeKey identifies one client having seen one revision of one policy.
func noticeKey(clientID string, p *compiledPolicy) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{clientID, p.appID, p.platform} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var rev [8]byte
	binary.BigEndian.PutUint64(rev[:], uint64(p.revision))
	h.Write(rev[:])
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// shownSet remembers, in this process, notice keys already shown, so that
// a notified client does not cost a KV round trip per request.
type shownSet struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

const maxShown = 1 << 16

func (s *shownSet) has(k [sha256.Size]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

func (s *shownSet) add(k [sha256.Size]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxShown {
		s.m = make(map[[sha256.Size]byte]struct{})
	}
	s.m[k] = struct{}{}
}
