package update

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
)

// MemoryStore is a [Store] in memory, for tests, demos and examples. Its
// releases are lost when the process ends.
type MemoryStore struct {
	mu       sync.Mutex
	releases map[[2]string][]Release
	bundles  map[bundleKey][]byte
}

type bundleKey struct {
	app, platform string
	version, from uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{releases: map[[2]string][]Release{}, bundles: map[bundleKey][]byte{}}
}

// Releases implements [Store].
func (s *MemoryStore) Releases(ctx context.Context, app, platform string) ([]Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Release, 0, len(s.releases[[2]string{app, platform}]))
	for _, r := range s.releases[[2]string{app, platform}] {
		out = append(out, cloneRelease(r))
	}
	return out, nil
}

// Create implements [Store].
func (s *MemoryStore) Create(ctx context.Context, app, platform string, version uint64) (ReleaseWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validAppID(app) || !validPlatform(platform) || version == 0 {
		return nil, malformed("invalid app id, platform or version")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if latest(s.releases[[2]string{app, platform}]) >= version {
		return nil, ErrConflict
	}
	return &memWriter{s: s, app: app, platform: platform, version: version, bundles: map[uint64]*memBundle{}}, nil
}

// OpenBundle implements [Store].
func (s *MemoryStore) OpenBundle(ctx context.Context, app, platform string, version, from uint64) (io.ReadSeekCloser, BundleInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, BundleInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.releases[[2]string{app, platform}] {
		if r.Version != version {
			continue
		}
		info, ok := r.Bundle(from)
		if !ok {
			break
		}
		b := s.bundles[bundleKey{app, platform, version, from}]
		return nopCloser{bytes.NewReader(b)}, info, nil
	}
	return nil, BundleInfo{}, ErrNotFound
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

func latest(rs []Release) uint64 {
	if len(rs) == 0 {
		return 0
	}
	return rs[len(rs)-1].Version
}

func cloneRelease(r Release) Release {
	r.Manifest = slices.Clone(r.Manifest)
	r.Bundles = slices.Clone(r.Bundles)
	return r
}

type memWriter struct {
	s                 *MemoryStore
	app, platform     string
	version           uint64
	mu                sync.Mutex
	bundles           map[uint64]*memBundle
	committed, closed bool
}

type memBundle struct {
	bytes.Buffer
	closed bool
}

func (b *memBundle) Close() error { b.closed = true; return nil }

func (w *memWriter) Bundle(ctx context.Context, from uint64) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return nil, fmt.Errorf("moat/update: release writer already finished")
	}
	if from >= w.version {
		return nil, malformed("a bundle comes from an earlier version")
	}
	if _, dup := w.bundles[from]; dup {
		return nil, fmt.Errorf("moat/update: bundle from version %d written twice", from)
	}
	b := &memBundle{}
	w.bundles[from] = b
	return b, nil
}

func (w *memWriter) Commit(ctx context.Context, rel Release) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return fmt.Errorf("moat/update: release writer already finished")
	}
	if err := checkCommit(rel, w.app, w.platform, w.version, func(from uint64) (int64, bool) {
		b, ok := w.bundles[from]
		if !ok || !b.closed {
			return 0, false
		}
		return int64(b.Len()), true
	}, len(w.bundles)); err != nil {
		return err
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{w.app, w.platform}
	if latest(s.releases[key]) >= w.version {
		return ErrConflict
	}
	for from, b := range w.bundles {
		s.bundles[bundleKey{w.app, w.platform, w.version, from}] = bytes.Clone(b.Bytes())
	}
	s.releases[key] = append(s.releases[key], cloneRelease(rel))
	w.committed = true
	return nil
}

func (w *memWriter) Abort(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.bundles = nil
	return nil
}

// checkCommit checks a release record against the writer it is committed
// through: same identity, and bundles that match the ones written.
func checkCommit(rel Release, app, platform string, version uint64, written func(from uint64) (int64, bool), count int) error {
	if rel.App != app || rel.Platform != platform || rel.Version != version {
		return fmt.Errorf("moat/update: release record is for another app, platform or version than its writer")
	}
	if len(rel.Manifest) == 0 {
		return fmt.Errorf("moat/update: release has no manifest")
	}
	if _, ok := rel.Bundle(0); !ok {
		return fmt.Errorf("moat/update: release has no full bundle")
	}
	if len(rel.Bundles) != count {
		return fmt.Errorf("moat/update: release lists %d bundles but %d were written", len(rel.Bundles), count)
	}
	seen := map[uint64]bool{}
	for _, b := range rel.Bundles {
		size, ok := written(b.From)
		if !ok || seen[b.From] || size != b.Size || b.ETag == "" {
			return fmt.Errorf("moat/update: release bundle from version %d does not match what was written", b.From)
		}
		seen[b.From] = true
	}
	return nil
}
