package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// FileStore is a [Store] in a directory, laid out so that a plain file
// server or a CDN origin could serve it too:
//
//	DIR/APP/PLATFORM/VERSION/manifest.json   the signed manifest
//	DIR/APP/PLATFORM/VERSION/release.json    the release record
//	DIR/APP/PLATFORM/VERSION/full.zip        the full bundle
//	DIR/APP/PLATFORM/VERSION/from-N.zip      the differential bundle from N
//
// A release is written into a hidden temporary directory beside the
// versions and renamed into place on commit, under a lock file
// (DIR/APP/PLATFORM/.lock), so readers never see half a release and two
// publishers never commit out of order. Files are synced before the
// rename. Temporary directories of publishes that crashed are left for
// the operator to remove (they start with ".tmp-").
type FileStore struct {
	dir string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store in dir, creating dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("moat/update: file store needs a directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("moat/update: file store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) channel(app, platform string) (string, error) {
	if !validAppID(app) || !validPlatform(platform) {
		return "", malformed("invalid app id or platform")
	}
	return filepath.Join(s.dir, app, platform), nil
}

// fileRelease is release.json.
type fileRelease struct {
	App         string       `json:"app"`
	Platform    string       `json:"platform"`
	Version     uint64       `json:"version"`
	AppVersions string       `json:"app_versions"`
	Mandatory   bool         `json:"mandatory"`
	Created     int64        `json:"created"`
	Expires     int64        `json:"expires"`
	Bundles     []fileBundle `json:"bundles"`
}

type fileBundle struct {
	From uint64 `json:"from"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
}

func bundleName(from uint64) string {
	if from == 0 {
		return "full.zip"
	}
	return "from-" + strconv.FormatUint(from, 10) + ".zip"
}

// Releases implements [Store].
func (s *FileStore) Releases(ctx context.Context, app, platform string) ([]Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch, err := s.channel(app, platform)
	if err != nil {
		return nil, err
	}
	versions, err := listVersions(ch)
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(versions))
	for _, v := range versions {
		r, err := s.read(ch, v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// listVersions returns the committed version directories of a channel,
// in increasing order.
func listVersions(ch string) ([]uint64, error) {
	ents, err := os.ReadDir(ch)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("moat/update: file store: %w", err)
	}
	var vs []uint64
	for _, e := range ents {
		v, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || !e.IsDir() || strconv.FormatUint(v, 10) != e.Name() {
			continue
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs, nil
}

func (s *FileStore) read(ch string, v uint64) (Release, error) {
	dir := filepath.Join(ch, strconv.FormatUint(v, 10))
	b, err := os.ReadFile(filepath.Join(dir, "release.json"))
	if err != nil {
		return Release{}, fmt.Errorf("moat/update: file store: %w", err)
	}
	var fr fileRelease
	if err := json.Unmarshal(b, &fr); err != nil || fr.Version != v {
		return Release{}, fmt.Errorf("moat/update: file store: %s is corrupt", filepath.Join(dir, "release.json"))
	}
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return Release{}, fmt.Errorf("moat/update: file store: %w", err)
	}
	r := Release{App: fr.App, Platform: fr.Platform, Version: fr.Version, AppVersions: fr.AppVersions,
		Mandatory: fr.Mandatory, Created: time.Unix(fr.Created, 0).UTC(), Expires: time.Unix(fr.Expires, 0).UTC(), Manifest: m}
	for _, b := range fr.Bundles {
		r.Bundles = append(r.Bundles, BundleInfo(b))
	}
	return r, nil
}

// Create implements [Store].
func (s *FileStore) Create(ctx context.Context, app, platform string, version uint64) (ReleaseWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch, err := s.channel(app, platform)
	if err != nil {
		return nil, err
	}
	if version == 0 || version > maxSafeInt {
		return nil, malformed("bundle version out of range")
	}
	vs, err := listVersions(ch)
	if err != nil {
		return nil, err
	}
	if len(vs) > 0 && vs[len(vs)-1] >= version {
		return nil, ErrConflict
	}
	if err := os.MkdirAll(ch, 0o755); err != nil {
		return nil, fmt.Errorf("moat/update: file store: %w", err)
	}
	tmp, err := os.MkdirTemp(ch, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("moat/update: file store: %w", err)
	}
	return &fileWriter{ch: ch, tmp: tmp, app: app, platform: platform, version: version, bundles: map[uint64]int64{}}, nil
}

// OpenBundle implements [Store].
func (s *FileStore) OpenBundle(ctx context.Context, app, platform string, version, from uint64) (io.ReadSeekCloser, BundleInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, BundleInfo{}, err
	}
	ch, err := s.channel(app, platform)
	if err != nil {
		return nil, BundleInfo{}, err
	}
	r, err := s.read(ch, version)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, BundleInfo{}, ErrNotFound
	}
	if err != nil {
		return nil, BundleInfo{}, err
	}
	info, ok := r.Bundle(from)
	if !ok {
		return nil, BundleInfo{}, ErrNotFound
	}
	f, err := os.Open(filepath.Join(ch, strconv.FormatUint(version, 10), bundleName(from)))
	if err != nil {
		return nil, BundleInfo{}, fmt.Errorf("moat/update: file store: %w", err)
	}
	return f, info, nil
}

type fileWriter struct {
	ch, tmp       string
	app, platform string
	version       uint64
	mu            sync.Mutex
	bundles       map[uint64]int64 // closed bundles and their sizes
	open          int
	done          bool
}

type fileBundleWriter struct {
	w    *fileWriter
	f    *os.File
	from uint64
	n    int64
}

func (b *fileBundleWriter) Write(p []byte) (int, error) {
	n, err := b.f.Write(p)
	b.n += int64(n)
	return n, err
}

func (b *fileBundleWriter) Close() error {
	err := b.f.Sync()
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	b.w.mu.Lock()
	defer b.w.mu.Unlock()
	b.w.open--
	if err == nil {
		b.w.bundles[b.from] = b.n
	}
	return err
}

func (w *fileWriter) Bundle(ctx context.Context, from uint64) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, fmt.Errorf("moat/update: release writer already finished")
	}
	if from >= w.version {
		return nil, malformed("a bundle comes from an earlier version")
	}
	f, err := os.OpenFile(filepath.Join(w.tmp, bundleName(from)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("moat/update: file store: %w", err)
	}
	w.open++
	return &fileBundleWriter{w: w, f: f, from: from}, nil
}

func (w *fileWriter) Commit(ctx context.Context, rel Release) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("moat/update: release writer already finished")
	}
	if w.open != 0 {
		return fmt.Errorf("moat/update: a bundle writer is still open")
	}
	if err := checkCommit(rel, w.app, w.platform, w.version, func(from uint64) (int64, bool) {
		n, ok := w.bundles[from]
		return n, ok
	}, len(w.bundles)); err != nil {
		return err
	}
	fr := fileRelease{App: rel.App, Platform: rel.Platform, Version: rel.Version, AppVersions: rel.AppVersions,
		Mandatory: rel.Mandatory, Created: rel.Created.Unix(), Expires: rel.Expires.Unix()}
	for _, b := range rel.Bundles {
		fr.Bundles = append(fr.Bundles, fileBundle(b))
	}
	meta, err := json.MarshalIndent(fr, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(w.tmp, "manifest.json"), rel.Manifest); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(w.tmp, "release.json"), meta); err != nil {
		return err
	}
	if err := syncDir(w.tmp); err != nil {
		return fmt.Errorf("moat/update: file store: %w", err)
	}
	unlock, err := lockFile(filepath.Join(w.ch, ".lock"), true)
	if err != nil {
		return fmt.Errorf("moat/update: file store: %w", err)
	}
	defer unlock()
	vs, err := listVersions(w.ch)
	if err != nil {
		return err
	}
	if len(vs) > 0 && vs[len(vs)-1] >= w.version {
		return ErrConflict
	}
	if err := os.Rename(w.tmp, filepath.Join(w.ch, strconv.FormatUint(w.version, 10))); err != nil {
		return fmt.Errorf("moat/update: file store: %w", err)
	}
	w.done = true
	if err := syncDir(w.ch); err != nil {
		return fmt.Errorf("moat/update: file store: release committed but not synced: %w", err)
	}
	return nil
}

func (w *fileWriter) Abort(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	return os.RemoveAll(w.tmp)
}

// writeFileSync writes a new file and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
