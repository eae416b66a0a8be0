package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
)

// HeaderBundleVersion is the request header in which a client reports the
// bundle version it has installed ("0" or absent: none). The Go client
// sets it on every request through [Client.Transport]; the update gate
// ([Server.Required]) reads it.
const HeaderBundleVersion = "Moat-Bundle-Version"

// ServerConfig configures a [Server].
type ServerConfig struct {
	// Store holds the releases. Required.
	Store Store
	// Roots are every root document from version 1 (or from the oldest
	// root any installed app ships) to the current one, in order. Clients
	// fetch them to follow rotations. Required; NewServer checks that each
	// one follows the previous.
	Roots [][]byte
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// CacheTTL is how long the server reuses the release list of an app
	// and platform before asking the store again. Zero means 5 seconds;
	// negative means no caching.
	CacheTTL time.Duration
	// Logger receives store errors. Nil means slog.Default().
	Logger *slog.Logger
	// Observe, if set, is told of every check answered, bundle served and
	// gate refusal, for analytics. It runs on the request's goroutine and
	// must return quickly. Nil means no one is told.
	Observe func(Event)
}

// Event is something the server did, for [ServerConfig.Observe].
type Event struct {
	// Kind is "check" (a check answered), "download" (a bundle served,
	// including partial and not-modified answers) or "update_required"
	// (the gate refused a call).
	Kind string
	// App, Platform and AppVersion identify the caller's app (AppVersion
	// may be "" for a check that did not give it).
	App, Platform, AppVersion string
	// Installed is the bundle version the client reported (for a
	// download: the bundle's base version, 0 for a full bundle).
	Installed uint64
	// Offered is the bundle version offered, served or required (0: a
	// check with nothing newer).
	Offered uint64
	// Mandatory tells whether Offered is a mandatory release.
	Mandatory bool
}

func (s *Server) observe(e Event) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(e)
	}
}

// Server answers update checks, serves bundles and root rotations, and
// tells whether a client lacks a mandatory update. Mount it under a prefix
// with http.StripPrefix; its routes are:
//
//	GET /roots/{N}.json                      root document version N
//	GET /{app}/{platform}/check              ?app_version=V&bundle_version=N
//	GET /{app}/{platform}/bundles/{version}/{full.zip|from-N.zip}
type Server struct {
	cfg ServerConfig
	// roots[i] is root version firstRoot+i.
	roots     [][]byte
	firstRoot uint64
	mux       *http.ServeMux

	mu    sync.Mutex
	cache map[[2]string]cachedReleases
}

type cachedReleases struct {
	at       time.Time
	releases []Release
}

var _ http.Handler = (*Server)(nil)

// NewServer checks cfg and returns a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("moat/update: server needs a Store")
	}
	if len(cfg.Roots) == 0 {
		return nil, errors.New("moat/update: server needs the root documents")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	first, err := ParseRoot(cfg.Roots[0])
	if err != nil {
		return nil, fmt.Errorf("moat/update: first root: %w", err)
	}
	s := &Server{cfg: cfg, cache: map[[2]string]cachedReleases{}, firstRoot: first.Version(), roots: [][]byte{first.Bytes()}}
	cur := first
	for _, next := range cfg.Roots[1:] {
		if cur, err = cur.Update(next); err != nil {
			return nil, fmt.Errorf("moat/update: roots: %w", err)
		}
		s.roots = append(s.roots, cur.Bytes())
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /roots/{file}", s.serveRoot)
	s.mux.HandleFunc("GET /{app}/{platform}/check", s.serveCheck)
	s.mux.HandleFunc("GET /{app}/{platform}/bundles/{version}/{file}", s.serveBundle)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	n, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	v, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || v < s.firstRoot || v-s.firstRoot >= uint64(len(s.roots)) || strconv.FormatUint(v, 10) != n {
		httpjson.WriteError(w, http.StatusNotFound, "not_found", "no such root version", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.roots[v-s.firstRoot])
}

// CheckResponse is the body of a 200 answer to a check.
type CheckResponse struct {
	// Manifest is the signed manifest document.
	Manifest json.RawMessage `json:"manifest"`
	// BundleVersion and Mandatory repeat the manifest's values for clients
	// that only display them; clients act on the verified manifest.
	BundleVersion uint64 `json:"bundle_version"`
	Mandatory     bool   `json:"mandatory"`
	// Bundle is the best bundle for the client.
	Bundle CheckBundle `json:"bundle"`
}

// CheckBundle tells where to download a bundle.
type CheckBundle struct {
	// URL is relative to the check URL ("bundles/7/from-6.zip").
	URL string `json:"url"`
	// From is the version the bundle updates from (0: full bundle).
	From uint64 `json:"from"`
	// Size is the bundle's length in bytes.
	Size int64 `json:"size"`
}

func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request) {
	app, platform := r.PathValue("app"), r.PathValue("platform")
	if !validAppID(app) || !validPlatform(platform) {
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", "invalid app id or platform", nil)
		return
	}
	q := r.URL.Query()
	installed, err := parseBundleVersion(q.Get("bundle_version"))
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", "bundle_version must be a decimal integer", nil)
		return
	}
	appVersion := q.Get("app_version")
	if appVersion == "" {
		appVersion = AnyAppVersion
	} else if _, ok := parseAppVersion(appVersion); !ok && appVersion != AnyAppVersion {
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", "app_version must be 1 to 4 dot-separated numbers", nil)
		return
	}
	rels, err := s.releases(r.Context(), app, platform)
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "moat/update: release store failed", "app", app, "platform", platform, "err", err)
		httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "release store unavailable", nil)
		return
	}
	best, _ := s.candidates(rels, appVersion, installed)
	ev := Event{Kind: "check", App: app, Platform: platform, AppVersion: q.Get("app_version"), Installed: installed}
	if best != nil {
		ev.Offered, ev.Mandatory = best.Version, best.Mandatory
	}
	s.observe(ev)
	if best == nil {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b, _ := best.Bundle(0)
	if d, ok := best.Bundle(installed); ok && installed != 0 && d.Size < b.Size {
		b = d
	}
	httpjson.Write(w, http.StatusOK, CheckResponse{
		Manifest: best.Manifest, BundleVersion: best.Version, Mandatory: best.Mandatory,
		Bundle: CheckBundle{URL: "bundles/" + strconv.FormatUint(best.Version, 10) + "/" + bundleName(b.From), From: b.From, Size: b.Size},
	})
}

// candidates returns the newest release a client can install (nil if none
// is newer than installed) and the newest mandatory release newer than
// installed. Only releases whose manifest has not expired and whose
// app-version range holds appVersion count: a client could not install
// the others.
func (s *Server) candidates(rels []Release, appVersion string, installed uint64) (best, mandatory *Release) {
	now := s.cfg.Now()
	for i := range rels {
		r := &rels[i]
		if r.Version <= installed || expired(r.Expires, now) || !rangeMatches(r.AppVersions, appVersion) {
			continue
		}
		best = r
		if r.Mandatory {
			mandatory = r
		}
	}
	return best, mandatory
}

func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request) {
	app, platform := r.PathValue("app"), r.PathValue("platform")
	version, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	file := r.PathValue("file")
	var from uint64
	switch {
	case err != nil || !validAppID(app) || !validPlatform(platform):
		err = ErrNotFound
	case file == "full.zip":
	default:
		n, ok := strings.CutPrefix(file, "from-")
		n, ok2 := strings.CutSuffix(n, ".zip")
		from, err = strconv.ParseUint(n, 10, 64)
		if !ok || !ok2 || from == 0 || strconv.FormatUint(from, 10) != n {
			err = ErrNotFound
		}
	}
	if err != nil {
		httpjson.WriteError(w, http.StatusNotFound, "not_found", "no such bundle", nil)
		return
	}
	rc, info, err := s.cfg.Store.OpenBundle(r.Context(), app, platform, version, from)
	if errors.Is(err, ErrNotFound) {
		httpjson.WriteError(w, http.StatusNotFound, "not_found", "no such bundle", nil)
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "moat/update: release store failed", "app", app, "platform", platform, "err", err)
		httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "release store unavailable", nil)
		return
	}
	defer rc.Close()
	s.observe(Event{Kind: "download", App: app, Platform: platform, Installed: from, Offered: version})
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("ETag", info.ETag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, rc)
}

// releases returns the release list of a channel, from the cache when it
// is fresh.
func (s *Server) releases(ctx context.Context, app, platform string) ([]Release, error) {
	key := [2]string{app, platform}
	now := s.cfg.Now()
	if s.cfg.CacheTTL > 0 {
		s.mu.Lock()
		c, ok := s.cache[key]
		s.mu.Unlock()
		if ok && now.Sub(c.at) < s.cfg.CacheTTL && !now.Before(c.at) {
			return c.releases, nil
		}
	}
	rels, err := s.cfg.Store.Releases(ctx, app, platform)
	if err != nil {
		return nil, err
	}
	if s.cfg.CacheTTL > 0 {
		s.mu.Lock()
		if len(s.cache) > 10_000 {
			clear(s.cache)
		}
		s.cache[key] = cachedReleases{at: now, releases: rels}
		s.mu.Unlock()
	}
	return rels, nil
}

// ClientState is what the update gate needs to know about a caller.
type ClientState struct {
	// App, Platform and AppVersion identify the native app (in moat, from
	// the access token's app context).
	App, Platform, AppVersion string
	// BundleVersion is the installed bundle version the client reported in
	// the HeaderBundleVersion header (see [BundleVersionFrom]).
	BundleVersion uint64
}

// Required reports whether the client must install a mandatory update
// before it may call protected APIs. It returns nil when it need not, a
// *[RequiredError] (matching [ErrUpdateRequired]) when it must, or the
// store's error, on which callers must refuse the request (fail closed).
// A mandatory release counts only while its manifest has not expired and
// its app-version range holds the client's version. An unparsable
// AppVersion counts as matching every range; an App or Platform that is
// not a valid name has no releases, hence nothing required.
//
// The bundle version is the client's own report: the gate makes honest
// clients update before they go on, it does not prove what a modified
// client runs (app attestation is the tool for that).
func (s *Server) Required(ctx context.Context, c ClientState) error {
	if !validAppID(c.App) || !validPlatform(c.Platform) {
		return nil // no release can exist for such names
	}
	rels, err := s.releases(ctx, c.App, c.Platform)
	if err != nil {
		return err
	}
	appVersion := c.AppVersion
	if _, ok := parseAppVersion(appVersion); !ok {
		appVersion = AnyAppVersion
	}
	best, mandatory := s.candidates(rels, appVersion, c.BundleVersion)
	if mandatory == nil {
		return nil
	}
	s.observe(Event{Kind: "update_required", App: c.App, Platform: c.Platform, AppVersion: c.AppVersion,
		Installed: c.BundleVersion, Offered: mandatory.Version, Mandatory: true})
	return &RequiredError{Installed: c.BundleVersion, Required: mandatory.Version, Latest: best.Version}
}

// BundleVersionFrom reads the HeaderBundleVersion header of r: absent is
// 0 (nothing installed), otherwise a decimal integer without sign or
// leading zeros, else [ErrMalformed].
func BundleVersionFrom(r *http.Request) (uint64, error) {
	return parseBundleVersion(r.Header.Get(HeaderBundleVersion))
}

func parseBundleVersion(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > maxSafeInt || strconv.FormatUint(v, 10) != s {
		return 0, malformed("bundle version must be a decimal integer")
	}
	return v, nil
}

// RequireUpdated returns middleware that refuses requests from clients
// lacking a mandatory update. state tells who is calling (for moat's
// Stack: app, platform and version from the principal, bundle version
// from [BundleVersionFrom]). Refusals:
//
//   - 403 {"error":"update_required","error_description":...,
//     "bundle_version":installed,"required_bundle_version":N,
//     "latest_bundle_version":M}: the client must check for updates and
//     apply before retrying (403 like moat's other app-version refusals);
//   - 400 {"error":"invalid_request"} when state fails with ErrMalformed;
//   - 503 {"error":"temporarily_unavailable"} on any other error.
func (s *Server) RequireUpdated(state func(*http.Request) (ClientState, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := state(r)
			if err == nil {
				err = s.Required(r.Context(), c)
			}
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			WriteRefusal(w, err, s.cfg.Logger)
		})
	}
}

// WriteRefusal writes the response [Server.RequireUpdated] sends for err,
// for callers that run [Server.Required] themselves. A nil logger means
// slog.Default().
func WriteRefusal(w http.ResponseWriter, err error, logger *slog.Logger) {
	var re *RequiredError
	switch {
	case errors.As(err, &re):
		httpjson.WriteError(w, http.StatusForbidden, "update_required",
			"a mandatory update of the app's resources must be applied first", map[string]any{
				"bundle_version": re.Installed, "required_bundle_version": re.Required, "latest_bundle_version": re.Latest,
			})
	case errors.Is(err, ErrMalformed):
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", "invalid "+HeaderBundleVersion+" header", nil)
	default:
		if logger == nil {
			logger = slog.Default()
		}
		logger.Error("moat/update: update gate failed", "err", err)
		httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "update status unavailable", nil)
	}
}
