package update

import (
	"context"
	"io"
	"time"
)

// Store keeps published releases durably. Implementations are safe for
// concurrent use. The filesystem implementation is [NewFileStore]; the
// in-memory one, for tests and demos, is [NewMemoryStore]. The
// conformance suite in package updatetest holds every implementation to
// the promises below.
type Store interface {
	// Releases returns the committed releases of app on platform, in
	// increasing bundle version; none is an empty list, not an error.
	Releases(ctx context.Context, app, platform string) ([]Release, error)

	// Create starts writing release version of app on platform. Nothing
	// of it is visible until [ReleaseWriter.Commit]. Create may already
	// return ErrConflict when a release with this or a later version is
	// committed.
	Create(ctx context.Context, app, platform string, version uint64) (ReleaseWriter, error)

	// OpenBundle opens the bundle of a committed release that brings
	// version from (0: nothing installed, the full bundle) to version, or
	// returns ErrNotFound.
	OpenBundle(ctx context.Context, app, platform string, version, from uint64) (io.ReadSeekCloser, BundleInfo, error)
}

// ReleaseWriter writes one release. Call Abort when giving up; it is
// harmless after Commit.
type ReleaseWriter interface {
	// Bundle returns a writer for the bundle from version from (0: full).
	// The bundle is complete when the writer is closed.
	Bundle(ctx context.Context, from uint64) (io.WriteCloser, error)

	// Commit makes the release and every closed bundle visible at once.
	// It fails with ErrConflict, leaving nothing visible, unless rel's
	// version is greater than every committed version of its app and
	// platform: of concurrent commits of one version exactly one succeeds.
	// rel.Bundles must describe exactly the bundles written.
	Commit(ctx context.Context, rel Release) error

	// Abort discards everything written.
	Abort(ctx context.Context) error
}

// Release is the stored record of one published bundle version.
type Release struct {
	App, Platform string
	Version       uint64
	// AppVersions, Mandatory, Created and Expires repeat the manifest's
	// values, so that servers need not parse manifests.
	AppVersions      string
	Mandatory        bool
	Created, Expires time.Time
	// Manifest is the signed manifest document.
	Manifest []byte
	// Bundles describes the full bundle (From 0) and the differential
	// bundles from each earlier version.
	Bundles []BundleInfo
}

// Bundle returns the description of the bundle from version from.
func (r Release) Bundle(from uint64) (BundleInfo, bool) {
	for _, b := range r.Bundles {
		if b.From == from {
			return b, true
		}
	}
	return BundleInfo{}, false
}

// BundleInfo describes one stored bundle.
type BundleInfo struct {
	// From is the version the bundle updates from, 0 for a full bundle.
	From uint64
	// Size is the bundle's length in bytes.
	Size int64
	// ETag is a strong HTTP entity tag (quoted) that changes whenever the
	// bundle's bytes could.
	ETag string
}
