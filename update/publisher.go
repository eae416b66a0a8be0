package update

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"time"
)

// PublisherConfig configures a [Publisher].
type PublisherConfig struct {
	// Store keeps the releases. Required.
	Store Store
	// Keys sign manifests: a threshold of the root's manifest keys.
	// Required.
	Keys []crypto.Signer
	// Root, if set, is the current root document: Publish then checks that
	// the manifest it signed verifies under it before committing. Nil skips
	// that check (clients still verify).
	Root []byte
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Deflate compresses bundle entries (Deflate, fastest level). False
	// stores them uncompressed: publishing runs at hashing speed and
	// bundles are as large as the files, which suits content that is
	// already compressed or servers that compress in transit.
	Deflate bool
}

// Publisher builds releases: it packs a directory into a deterministic full
// bundle, signs its manifest, writes a differential bundle from every
// earlier release to the new one, and commits all of it to the store.
type Publisher struct {
	cfg  PublisherConfig
	root *TrustedRoot
}

// NewPublisher checks cfg and returns a publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Store == nil {
		return nil, errors.New("moat/update: publisher needs a Store")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("moat/update: publisher needs at least one signing key")
	}
	for _, k := range cfg.Keys {
		if k == nil {
			return nil, errors.New("moat/update: nil signing key")
		}
		if _, err := algorithmFor(k.Public()); err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Publisher{cfg: cfg}
	if cfg.Root != nil {
		r, err := ParseRoot(cfg.Root)
		if err != nil {
			return nil, err
		}
		p.root = r
	}
	return p, nil
}

// ReleaseSpec says what to publish.
type ReleaseSpec struct {
	// App, Platform, AppVersions and Mandatory go into the manifest; see
	// [Manifest].
	App, Platform, AppVersions string
	Mandatory                  bool
	// Version is the new bundle version; it must be greater than every
	// published version of the app on the platform.
	Version uint64
	// Expires is when clients stop accepting the manifest; it must be
	// after now. Publish a new version before then.
	Expires time.Time
}

// copyBufSize is the buffer for copying file contents.
const copyBufSize = 256 << 10

// Publish packs the regular files of src into release spec.Version and
// commits it with its bundles. Symbolic links, other special files, unsafe
// names and names that collide on case-insensitive file systems are
// refused. A file that changes while publishing makes Publish fail.
func (p *Publisher) Publish(ctx context.Context, src fs.FS, spec ReleaseSpec) (*Release, error) {
	now := p.cfg.Now()
	if !validAppID(spec.App) || !validPlatform(spec.Platform) {
		return nil, malformed("invalid app id or platform")
	}
	if _, ok := parseRange(spec.AppVersions); !ok {
		return nil, malformed("app versions is not a version range")
	}
	if spec.Version < 1 || spec.Version > maxSafeInt {
		return nil, malformed("bundle version must be 1 to 2^53-1")
	}
	if !spec.Expires.Truncate(time.Second).After(now) {
		return nil, malformed("expiry must be in the future")
	}
	paths, err := listTree(src)
	if err != nil {
		return nil, err
	}
	earlier, err := p.cfg.Store.Releases(ctx, spec.App, spec.Platform)
	if err != nil {
		return nil, err
	}
	if latest(earlier) >= spec.Version {
		return nil, fmt.Errorf("%w: version %d is published, new version %d", ErrConflict, latest(earlier), spec.Version)
	}
	w, err := p.cfg.Store.Create(ctx, spec.App, spec.Platform, spec.Version)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Abort(context.WithoutCancel(ctx))
		}
	}()
	buf := make([]byte, copyBufSize)

	// Full bundle: one pass over every file, hashing what is written.
	files := make([]File, len(paths))
	fullSize, err := p.writeBundle(ctx, w, 0, func(bw *bundleWriter) error {
		h := sha256.New()
		for i, path := range paths {
			n, err := copyFile(src, path, bw, h, buf)
			if err != nil {
				return err
			}
			files[i] = File{Path: path, Size: n}
			h.Sum(files[i].SHA256[:0])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	m := Manifest{AppID: spec.App, Platform: spec.Platform, AppVersions: spec.AppVersions, BundleVersion: spec.Version,
		Created: now.Truncate(time.Second), Expires: spec.Expires.Truncate(time.Second), Mandatory: spec.Mandatory, Files: files}
	signed, err := SignManifest(m, p.cfg.Keys...)
	if err != nil {
		return nil, err
	}
	if p.root != nil {
		if _, err := p.root.VerifyManifest(signed, now); err != nil {
			return nil, fmt.Errorf("moat/update: the signed manifest does not verify under the configured root: %w", err)
		}
	}
	rel := &Release{App: spec.App, Platform: spec.Platform, Version: spec.Version, AppVersions: spec.AppVersions,
		Mandatory: spec.Mandatory, Created: m.Created, Expires: m.Expires, Manifest: signed}
	contentID := sha256.Sum256(signedPayloadOrEmpty(signed))
	rel.Bundles = append(rel.Bundles, BundleInfo{From: 0, Size: fullSize, ETag: p.etag(contentID, 0)})

	// A differential bundle from every earlier release.
	for _, e := range earlier {
		base, err := readManifestUnverified(e.Manifest)
		if err != nil {
			return nil, fmt.Errorf("moat/update: stored manifest of version %d: %w", e.Version, err)
		}
		changed, deleted := diff(base, files)
		size, err := p.writeBundle(ctx, w, e.Version, func(bw *bundleWriter) error {
			h := sha256.New()
			for _, f := range changed {
				n, err := copyFile(src, f.Path, bw, h, buf)
				if err != nil {
					return err
				}
				if n != f.Size || [32]byte(h.Sum(nil)) != f.SHA256 {
					return fmt.Errorf("moat/update: %s changed while publishing", f.Path)
				}
			}
			return bw.writeDelta(deltaPayload{From: e.Version, To: spec.Version, Deleted: deleted})
		})
		if err != nil {
			return nil, err
		}
		rel.Bundles = append(rel.Bundles, BundleInfo{From: e.Version, Size: size, ETag: p.etag(contentID, e.Version)})
	}
	if err := w.Commit(ctx, *rel); err != nil {
		return nil, err
	}
	committed = true
	return rel, nil
}

// etag names a bundle's bytes: the signed manifest (which carries the
// creation time and every file hash), the base version and the
// compression method determine them.
func (p *Publisher) etag(content [32]byte, from uint64) string {
	h := sha256.New()
	h.Write(content[:])
	h.Write([]byte("\x00from=" + strconv.FormatUint(from, 10) + "\x00deflate=" + strconv.FormatBool(p.cfg.Deflate)))
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

func signedPayloadOrEmpty(signed []byte) []byte {
	b, err := unverifiedPayload(signed)
	if err != nil {
		return signed
	}
	return b
}

// writeBundle writes one bundle through fill and returns its size.
func (p *Publisher) writeBundle(ctx context.Context, w ReleaseWriter, from uint64, fill func(*bundleWriter) error) (int64, error) {
	out, err := w.Bundle(ctx, from)
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: out}
	bw := newBundleWriter(cw, p.cfg.Deflate)
	if err := fill(bw); err != nil {
		out.Close()
		return 0, err
	}
	if err := bw.close(); err != nil {
		out.Close()
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// copyFile copies src's file path into a new bundle entry, hashing the
// bytes written with h (which it resets), and returns the length.
func copyFile(src fs.FS, path string, bw *bundleWriter, h hash.Hash, buf []byte) (int64, error) {
	f, err := src.Open(path)
	if err != nil {
		return 0, fmt.Errorf("moat/update: %w", err)
	}
	defer f.Close()
	entry, err := bw.create(path)
	if err != nil {
		return 0, err
	}
	h.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(entry, h), onlyReader{f}, buf)
	if err != nil {
		return 0, fmt.Errorf("moat/update: %s: %w", path, err)
	}
	return n, nil
}

// onlyReader hides WriterTo/ReaderFrom so that CopyBuffer uses the buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// listTree returns the paths of the regular files under src, sorted by
// byte order, after checking them.
func listTree(src fs.FS) ([]string, error) {
	var paths []string
	err := fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("moat/update: %w", err)
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("moat/update: %s is a symbolic link; bundles hold regular files only", path)
		case !d.Type().IsRegular():
			return fmt.Errorf("moat/update: %s is not a regular file", path)
		}
		if err := checkPath(path); err != nil {
			return fmt.Errorf("moat/update: %s: %w", path, err)
		}
		paths = append(paths, path)
		if len(paths) > maxFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooLarge, maxFiles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	if err := checkPathSet(paths); err != nil {
		return nil, err
	}
	return paths, nil
}

// diff returns the files of next that are new or changed since base, and
// the paths of base that next no longer has, both sorted.
func diff(base *Manifest, next []File) (changed []File, deleted []string) {
	old := make(map[string]File, len(base.Files))
	for _, f := range base.Files {
		old[f.Path] = f
	}
	inNext := make(map[string]bool, len(next))
	for _, f := range next {
		inNext[f.Path] = true
		if o, ok := old[f.Path]; !ok || o.SHA256 != f.SHA256 || o.Size != f.Size {
			changed = append(changed, f)
		}
	}
	for _, f := range base.Files {
		if !inNext[f.Path] {
			deleted = append(deleted, f.Path)
		}
	}
	return changed, deleted
}
