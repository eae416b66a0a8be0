package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientConfig configures a [Client].
type ClientConfig struct {
	// BaseURL is where the update [Server] is mounted, such as
	// "https://api.example.com/update". Required; https unless the host is
	// a loopback address.
	BaseURL string
	// App and Platform name the app; manifests for anything else are
	// refused. Required.
	App, Platform string
	// AppVersion is the native app's version ("2.4.1"); manifests whose
	// app_versions range does not hold it are refused. Required;
	// [AnyAppVersion] skips the check (operator tools only).
	AppVersion string
	// Root is the root document the app ships with. Required. The client
	// follows rotations from it and keeps the newest root in Dir.
	Root []byte
	// Dir is the installation directory (created if missing). Required.
	// Serve the app's web resources from [Client.Path].
	Dir string
	// HTTPClient makes the requests. Nil means http.DefaultClient. Bound
	// the time of a check or apply with the context.
	HTTPClient *http.Client
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Progress, if set, is called as a bundle downloads and installs.
	Progress func(Progress)
	// MaxSize bounds both a bundle download and the installed size of a
	// version, in bytes. Zero means 1 GiB.
	MaxSize int64
}

// Progress reports how far an apply has come.
type Progress struct {
	// Phase is "download" or "install".
	Phase string
	// Done and Total count bytes; Total is -1 when unknown.
	Done, Total int64
}

// Client checks for, verifies and installs updates of an app's web
// resources. Its methods are safe for concurrent use; an apply or rollback
// excludes every other one on the same directory, across processes.
type Client struct {
	cfg       ClientConfig
	base      *url.URL
	mu        sync.Mutex
	root      *TrustedRoot
	installed atomic.Uint64
	freeSpace func(string) (uint64, error) // a hook for tests
}

// maxRootRotations bounds the rotations one check follows.
const maxRootRotations = 64

// NewClient checks cfg, loads the newest trusted root (the shipped one or
// a later one stored in Dir), removes what an interrupted apply left in
// Dir, and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("moat/update: client needs BaseURL")
	case !validAppID(cfg.App) || !validPlatform(cfg.Platform):
		return nil, errors.New("moat/update: client needs a valid App and Platform")
	case cfg.AppVersion == "":
		return nil, errors.New("moat/update: client needs AppVersion (or AnyAppVersion)")
	case cfg.Dir == "":
		return nil, errors.New("moat/update: client needs Dir")
	case len(cfg.Root) == 0:
		return nil, errors.New("moat/update: client needs the shipped Root")
	}
	if _, ok := parseAppVersion(cfg.AppVersion); !ok && cfg.AppVersion != AnyAppVersion {
		return nil, errors.New("moat/update: AppVersion must be 1 to 4 dot-separated numbers")
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/") + "/")
	if err != nil || base.Host == "" || (base.Scheme != "https" && !(base.Scheme == "http" && isLoopback(base.Hostname()))) {
		return nil, errors.New("moat/update: BaseURL must be an https URL (http only for loopback)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1 << 30
	}
	shipped, err := ParseRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("moat/update: shipped root: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, diskError(err)
	}
	c := &Client{cfg: cfg, base: base, root: shipped, freeSpace: freeSpace}
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, rootFile)); err == nil {
		if stored, err := ParseRoot(b); err == nil && stored.Version() > shipped.Version() {
			c.root = stored
		}
	}
	// Remove what an interrupted apply left, unless an apply is running.
	if unlock, err := lockDir(cfg.Dir); err == nil {
		err = cleanup(cfg.Dir)
		unlock()
		if err != nil {
			return nil, diskError(err)
		}
	}
	m, err := installedManifest(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if m != nil {
		c.installed.Store(m.BundleVersion)
	}
	return c, nil
}

// isLoopback reports whether host is "localhost" or a literal loopback
// address (127.0.0.0/8, ::1). A name such as "127.example.com" is not:
// it resolves wherever its owner wants.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// Path returns the directory the app serves its web resources from. It
// exists once a version is installed, and always holds one complete
// version.
func (c *Client) Path() string { return filepath.Join(c.cfg.Dir, linkCurrent, filesDir) }

// Installed returns the installed version's manifest, or ErrNotFound.
func (c *Client) Installed() (*Manifest, error) {
	m, err := installedManifest(c.cfg.Dir)
	if err == nil && m == nil {
		err = ErrNotFound
	}
	return m, err
}

// InstalledVersion returns the installed bundle version, 0 for none.
func (c *Client) InstalledVersion() uint64 { return c.installed.Load() }

// Transport wraps base (nil: http.DefaultTransport) so that every request
// reports the installed bundle version in the HeaderBundleVersion header,
// which the server's update gate reads.
func (c *Client) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set(HeaderBundleVersion, strconv.FormatUint(c.installed.Load(), 10))
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Update is a verified manifest newer than the installed version, with
// where to fetch its bundle.
type Update struct {
	// Manifest is verified: signatures, expiry, app, platform, app version
	// and a bundle version newer than the installed one.
	Manifest *Manifest
	// From is the version the offered bundle updates from, 0 for full.
	From uint64
	// Size is the offered bundle's size as the server announced it.
	Size int64

	bundleURL *url.URL
	checkURL  *url.URL
}

// Check follows root rotations, asks the server for the newest release
// and verifies it. It returns (nil, nil) when there is nothing newer (or
// only the version a [Client.Rollback] moved away from).
func (c *Client) Check(ctx context.Context) (*Update, error) {
	root, err := c.updateRoot(ctx)
	if err != nil {
		return nil, err
	}
	if err := root.CheckExpiry(c.cfg.Now()); err != nil {
		return nil, err
	}
	installed, err := installedManifest(c.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var iv uint64
	if installed != nil {
		iv = installed.BundleVersion
	}
	q := url.Values{"bundle_version": {strconv.FormatUint(iv, 10)}}
	if c.cfg.AppVersion != AnyAppVersion {
		q.Set("app_version", c.cfg.AppVersion)
	}
	checkURL := c.base.ResolveReference(&url.URL{Path: url.PathEscape(c.cfg.App) + "/" + url.PathEscape(c.cfg.Platform) + "/check", RawQuery: q.Encode()})
	body, status, err := c.get(ctx, checkURL, maxManifestBytes+1<<20)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	if status != http.StatusOK {
		return nil, &NetworkError{URL: checkURL.Redacted(), StatusCode: status}
	}
	var resp CheckResponse
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Manifest) == 0 {
		return nil, malformed("check response is not the expected JSON")
	}
	m, err := root.VerifyManifest(resp.Manifest, c.cfg.Now())
	if err != nil {
		return nil, err
	}
	if m.AppID != c.cfg.App || m.Platform != c.cfg.Platform || !rangeMatches(m.AppVersions, c.cfg.AppVersion) {
		return nil, ErrWrongTarget
	}
	if m.BundleVersion <= iv {
		return nil, fmt.Errorf("%w: offered bundle version %d, installed %d", ErrRollback, m.BundleVersion, iv)
	}
	if rejected, _ := readRejected(c.cfg.Dir); m.BundleVersion <= rejected {
		return nil, nil
	}
	bu, err := checkURL.Parse(resp.Bundle.URL)
	if err != nil || bu.Scheme != c.base.Scheme || bu.Host != c.base.Host {
		return nil, malformed("bundle URL is not on the update server")
	}
	if resp.Bundle.From != 0 && resp.Bundle.From != iv {
		return nil, malformed("offered differential bundle is not from the installed version")
	}
	return &Update{Manifest: m, From: resp.Bundle.From, Size: resp.Bundle.Size, bundleURL: bu, checkURL: checkURL}, nil
}

// Update checks and, when there is something newer, applies it. It
// returns the installed manifest, or nil when there was nothing to do.
func (c *Client) Update(ctx context.Context) (*Manifest, error) {
	u, err := c.Check(ctx)
	if err != nil || u == nil {
		return nil, err
	}
	if err := c.Apply(ctx, u); err != nil {
		return nil, err
	}
	return u.Manifest, nil
}

// updateRoot fetches and verifies root versions after the trusted one
// until the server has no next one, storing each in Dir.
func (c *Client) updateRoot(ctx context.Context) (*TrustedRoot, error) {
	c.mu.Lock()
	root := c.root
	c.mu.Unlock()
	for range maxRootRotations {
		u := c.base.ResolveReference(&url.URL{Path: "roots/" + strconv.FormatUint(root.Version()+1, 10) + ".json"})
		body, status, err := c.get(ctx, u, maxRootBytes)
		if err != nil {
			return nil, err
		}
		if status == http.StatusNotFound {
			break
		}
		if status != http.StatusOK {
			return nil, &NetworkError{URL: u.Redacted(), StatusCode: status}
		}
		next, err := root.Update(body)
		if err != nil {
			return nil, err
		}
		if err := c.storeRoot(next); err != nil {
			return nil, err
		}
		root = next
		c.mu.Lock()
		if root.Version() > c.root.Version() {
			c.root = root
		}
		c.mu.Unlock()
	}
	return root, nil
}

// storeRoot keeps a newly trusted root in the installation directory,
// under the lock (an apply's cleanup removes temporary files). While an
// apply runs it is kept in memory only; the next check stores it.
func (c *Client) storeRoot(r *TrustedRoot) error {
	unlock, err := lockDir(c.cfg.Dir)
	if errors.Is(err, ErrInProgress) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	return diskError(writeFileAtomic(c.cfg.Dir, rootFile, r.Bytes()))
}

// get fetches u and returns a body of at most limit bytes and the status.
func (c *Client) get(ctx context.Context, u *url.URL, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	if int64(len(body)) > limit {
		return nil, 0, fmt.Errorf("%w: response from %s over %d bytes", ErrTooLarge, u.Redacted(), limit)
	}
	return body, resp.StatusCode, nil
}

// bundleBound is the largest size a well-formed bundle for m (from base)
// can have: the files, deflate's worst-case growth, and generous room
// for zip headers and the delta description.
func bundleBound(m, base *Manifest) int64 {
	total := m.TotalSize()
	n := total + total/64 + 64<<10
	for _, f := range m.Files {
		n += 256 + 2*int64(len(f.Path))
	}
	if base != nil {
		for _, f := range base.Files {
			n += 8 + 2*int64(len(f.Path))
		}
	}
	return n
}

// Apply downloads u's bundle, verifies every file against the manifest,
// and installs the version atomically, keeping the replaced version for
// [Client.Rollback]. If the process dies at any point, Path still holds
// either the old or the new version, complete. It fails with
// ErrInProgress while another apply or rollback runs on the directory,
// ErrRollback if the installed version is no longer older than u's,
// ErrExpired (or ErrSignature) if the manifest no longer verifies under
// the newest trusted root at the time of the apply, and
// with ErrIntegrity, ErrUnsafePath, ErrTooLarge, ErrDiskSpace or a
// *NetworkError otherwise; the installed version is then untouched.
func (c *Client) Apply(ctx context.Context, u *Update) error {
	if u == nil || u.Manifest == nil || u.Manifest.signed == nil || u.bundleURL == nil || (u.From != 0 && u.checkURL == nil) {
		return errors.New("moat/update: Apply needs an Update from Check")
	}
	dir := c.cfg.Dir
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := cleanup(dir); err != nil {
		return diskError(err)
	}
	m := u.Manifest
	base, err := installedManifest(dir)
	if err != nil {
		return err
	}
	var iv uint64
	if base != nil {
		iv = base.BundleVersion
	}
	if m.BundleVersion <= iv {
		return fmt.Errorf("%w: bundle version %d, installed %d", ErrRollback, m.BundleVersion, iv)
	}
	// Time may have passed since Check, and a root rotation followed
	// since may have dropped the manifest's signers: verify again under
	// the newest trusted root, now.
	c.mu.Lock()
	root := c.root
	c.mu.Unlock()
	if _, err := root.VerifyManifest(m.signed, c.cfg.Now()); err != nil {
		return err
	}
	bundleURL, from := u.bundleURL, u.From
	if from != 0 && from != iv {
		// The installation changed since Check: take the full bundle.
		bundleURL, from = u.checkURL.ResolveReference(&url.URL{Path: "bundles/" + strconv.FormatUint(m.BundleVersion, 10) + "/full.zip"}), 0
	}
	if from == 0 {
		base = nil
	}
	limit := min(bundleBound(m, base), c.cfg.MaxSize)
	if m.TotalSize() > c.cfg.MaxSize {
		return fmt.Errorf("%w: version %d holds %d bytes, the limit is %d", ErrTooLarge, m.BundleVersion, m.TotalSize(), c.cfg.MaxSize)
	}
	if free, err := c.freeSpace(dir); err == nil && free < uint64(limit+m.TotalSize()) {
		return fmt.Errorf("%w: %d bytes free, up to %d needed", ErrDiskSpace, free, limit+m.TotalSize())
	}

	dl, err := os.CreateTemp(dir, ".download-")
	if err != nil {
		return diskError(err)
	}
	defer func() {
		dl.Close()
		os.Remove(dl.Name())
	}()
	size, err := c.download(ctx, bundleURL, dl, limit, u.Size)
	if err != nil {
		return err
	}
	idx, err := readBundleIndex(dl, size, m, base)
	if err != nil {
		return err
	}

	stage, err := os.MkdirTemp(dir, ".stage-")
	if err != nil {
		return diskError(err)
	}
	defer os.RemoveAll(stage) // gone after the rename on success
	var done int64
	total := m.TotalSize()
	st := &stager{root: stage, dirs: map[string]bool{}, buf: make([]byte, copyBufSize), progress: c.reporter("install", &done, total)}
	if err := st.stageVersion(m, idx, filepath.Join(dir, versionDir(iv))); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.commit(stage, m.BundleVersion, iv)
}

// commit moves a complete stage into place and switches the current link
// to it: the one step that changes which version the app sees.
func (c *Client) commit(stage string, v, previous uint64) error {
	dir := c.cfg.Dir
	final := filepath.Join(dir, versionDir(v))
	if err := os.RemoveAll(final); err != nil { // left by a crash before the switch
		return diskError(err)
	}
	if err := os.Rename(stage, final); err != nil {
		return diskError(err)
	}
	if previous != 0 {
		if err := replaceLink(dir, linkPrevious, versionDir(previous)); err != nil {
			return diskError(err)
		}
	}
	if err := replaceLink(dir, linkCurrent, versionDir(v)); err != nil {
		return diskError(err)
	}
	c.installed.Store(v)
	if err := syncDir(dir); err != nil {
		return diskError(err)
	}
	return diskError(cleanup(dir))
}

// reporter returns a byte counter that calls the progress callback about
// every 256 KiB and at the end.
func (c *Client) reporter(phase string, done *int64, total int64) func(int64) {
	if c.cfg.Progress == nil {
		return nil
	}
	var last int64
	return func(n int64) {
		*done += n
		if *done-last >= 256<<10 || *done == total {
			last = *done
			c.cfg.Progress(Progress{Phase: phase, Done: *done, Total: total})
		}
	}
}

// download fetches u into f, refusing more than limit bytes.
func (c *Client) download(ctx context.Context, u *url.URL, f *os.File, limit, announced int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, &NetworkError{URL: u.Redacted(), StatusCode: resp.StatusCode}
	}
	if resp.ContentLength > limit {
		return 0, fmt.Errorf("%w: bundle of %d bytes, at most %d expected", ErrTooLarge, resp.ContentLength, limit)
	}
	total := resp.ContentLength
	if total < 0 {
		total = -1
		if announced > 0 && announced <= limit {
			total = announced
		}
	}
	var done int64
	w := &progressWriter{w: f, report: c.reporter("download", &done, total)}
	n, err := io.CopyBuffer(errWriter{w}, io.LimitReader(resp.Body, limit+1), make([]byte, copyBufSize))
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return 0, diskError(we.err)
		}
		return 0, &NetworkError{URL: u.Redacted(), Err: err}
	}
	if n > limit {
		return 0, fmt.Errorf("%w: bundle over %d bytes", ErrTooLarge, limit)
	}
	return n, nil
}

// Rollback reinstates the version the last apply replaced, and records the
// version it moves away from so that Check does not offer it again (only
// a later version). It returns ErrNotFound when there is no previous
// version, ErrInProgress while an apply runs.
func (c *Client) Rollback(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := c.cfg.Dir
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	cur, prev, err := readLinks(dir)
	if err != nil {
		return err
	}
	if prev == 0 || cur == 0 {
		return fmt.Errorf("%w: no previous version to roll back to", ErrNotFound)
	}
	if err := writeFileAtomic(dir, rejectedFile, []byte(strconv.FormatUint(cur, 10))); err != nil {
		return diskError(err)
	}
	if err := replaceLink(dir, linkCurrent, versionDir(prev)); err != nil {
		return diskError(err)
	}
	c.installed.Store(prev)
	if err := os.Remove(filepath.Join(dir, linkPrevious)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return diskError(err)
	}
	if err := syncDir(dir); err != nil {
		return diskError(err)
	}
	return diskError(cleanup(dir))
}

// readRejected returns the version recorded by the last rollback, 0 if
// none.
func readRejected(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, rejectedFile))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
