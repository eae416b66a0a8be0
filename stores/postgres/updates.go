package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moatsec/moat/update"
)

// BundleChunkSize is the size of the rows bundles are stored in: every
// chunk of a bundle but the last holds exactly this many bytes. Writers
// and readers hold at most one chunk in memory.
const BundleChunkSize = 1 << 20

// maxVersion is the largest bundle version: the largest integer every
// JSON parser reads exactly, as for the file store.
const maxVersion = 1<<53 - 1

// Updates is the PostgreSQL [update.Store].
//
// A publish ([Updates.Create]) registers an upload (table
// update_uploads); each bundle written through [update.ReleaseWriter] is
// streamed into rows of at most [BundleChunkSize] bytes (update_chunks),
// each inserted as soon as it fills. Nothing of it is visible: readers go
// through the release and bundle rows, which only Commit writes. Commit
// is one transaction that first moves the channel's latest version
// forward with a conditional upsert (update_channels: ... DO UPDATE SET
// latest = $v WHERE latest < $v), which locks the channel row, so of
// concurrent commits of one version exactly one succeeds and versions
// only grow; then it checks the staged chunks against the release record
// and inserts the release (update_releases) and its bundles
// (update_bundles). Abort deletes the upload and its chunks. Uploads of
// publishers that crashed stay staged until [Updates.DeleteAbandoned]
// removes them.
//
// [Updates.OpenBundle]'s reader fetches one chunk at a time as it reads
// and seeks, with the context given to OpenBundle: it fails once that
// context ends.
type Updates struct {
	db        *pgxpool.Pool
	chunkSize int
}

func checkChannel(app, platform string) error { return update.CheckChannel(app, platform) }

// Releases implements [update.Store].
func (s *Updates) Releases(ctx context.Context, app, platform string) ([]update.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkChannel(app, platform); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
SELECT version, app_versions, mandatory, created, expires, manifest
FROM update_releases WHERE app = $1 AND platform = $2
ORDER BY version`, app, platform)
	if err != nil {
		return nil, dbError("reading releases", err)
	}
	out := []update.Release{}
	index := map[uint64]int{}
	for rows.Next() {
		r := update.Release{App: app, Platform: platform}
		var v int64
		if err := rows.Scan(&v, &r.AppVersions, &r.Mandatory, &r.Created, &r.Expires, &r.Manifest); err != nil {
			rows.Close()
			return nil, dbError("reading releases", err)
		}
		r.Version, r.Created, r.Expires = uint64(v), r.Created.UTC(), r.Expires.UTC()
		index[r.Version] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbError("reading releases", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// Releases and their bundles are committed together and never
	// removed, so every release read above has its bundles here; bundles
	// of a release committed in between are skipped.
	rows, err = s.db.Query(ctx, `
SELECT version, from_version, size, etag FROM update_bundles
WHERE app = $1 AND platform = $2
ORDER BY version, from_version`, app, platform)
	if err != nil {
		return nil, dbError("reading bundles", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, from int64
		var b update.BundleInfo
		if err := rows.Scan(&v, &from, &b.Size, &b.ETag); err != nil {
			return nil, dbError("reading bundles", err)
		}
		b.From = uint64(from)
		if i, ok := index[uint64(v)]; ok {
			out[i].Bundles = append(out[i].Bundles, b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("reading bundles", err)
	}
	return out, nil
}

// Create implements [update.Store]. It returns [update.ErrConflict] early
// when the channel already has this or a later version.
func (s *Updates) Create(ctx context.Context, app, platform string, version uint64) (update.ReleaseWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkChannel(app, platform); err != nil {
		return nil, err
	}
	if version == 0 || version > maxVersion {
		return nil, fmt.Errorf("%w: bundle version out of range", update.ErrMalformed)
	}
	var latest int64
	err := s.db.QueryRow(ctx, `SELECT latest FROM update_channels WHERE app = $1 AND platform = $2`, app, platform).Scan(&latest)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, dbError("reading channel", err)
	case uint64(latest) >= version:
		return nil, update.ErrConflict
	}
	var id int64
	err = s.db.QueryRow(ctx, `INSERT INTO update_uploads (app, platform, version) VALUES ($1, $2, $3) RETURNING id`,
		app, platform, int64(version)).Scan(&id)
	if err != nil {
		return nil, dbError("starting upload", err)
	}
	return &releaseWriter{s: s, upload: id, app: app, platform: platform, version: version, bundles: map[uint64]*bundleWriter{}}, nil
}

// DeleteAbandoned removes the staged uploads (and their chunks) that were
// started before before and neither committed nor aborted: those of
// publishers that crashed or gave up without calling Abort. It returns
// how many it removed. Pass a time well before any publish that may
// still be running.
func (s *Updates) DeleteAbandoned(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM update_uploads WHERE NOT committed AND created_at < $1`, before)
	if err != nil {
		return 0, dbError("deleting abandoned uploads", err)
	}
	return tag.RowsAffected(), nil
}

// OpenBundle implements [update.Store].
func (s *Updates) OpenBundle(ctx context.Context, app, platform string, version, from uint64) (io.ReadSeekCloser, update.BundleInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, update.BundleInfo{}, err
	}
	if err := checkChannel(app, platform); err != nil {
		return nil, update.BundleInfo{}, err
	}
	if version > maxVersion || from > maxVersion {
		return nil, update.BundleInfo{}, update.ErrNotFound
	}
	var info update.BundleInfo
	var upload int64
	var chunkSize int
	err := s.db.QueryRow(ctx, `
SELECT r.upload_id, b.size, b.etag, b.chunk_size
FROM update_bundles b JOIN update_releases r USING (app, platform, version)
WHERE b.app = $1 AND b.platform = $2 AND b.version = $3 AND b.from_version = $4`,
		app, platform, int64(version), int64(from)).Scan(&upload, &info.Size, &info.ETag, &chunkSize)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, update.BundleInfo{}, update.ErrNotFound
	}
	if err != nil {
		return nil, update.BundleInfo{}, dbError("opening bundle", err)
	}
	if chunkSize <= 0 {
		return nil, update.BundleInfo{}, errors.New("moat/postgres: stored bundle has no chunk size")
	}
	info.From = from
	return &bundleReader{ctx: ctx, db: s.db, upload: upload, from: int64(from), size: info.Size, chunkSize: int64(chunkSize), loaded: -1}, info, nil
}

// bundleReader reads a committed bundle chunk by chunk.
type bundleReader struct {
	ctx       context.Context
	db        *pgxpool.Pool
	upload    int64
	from      int64
	size      int64
	chunkSize int64
	off       int64
	loaded    int64 // index of the chunk in buf, -1 for none
	buf       []byte
	closed    bool
}

func (r *bundleReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("moat/postgres: read of a closed bundle")
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := r.off / r.chunkSize
	if n != r.loaded {
		if err := r.load(n); err != nil {
			return 0, err
		}
	}
	k := copy(p, r.buf[r.off-n*r.chunkSize:])
	r.off += int64(k)
	return k, nil
}

func (r *bundleReader) load(n int64) error {
	r.buf, r.loaded = nil, -1
	var data []byte
	err := r.db.QueryRow(r.ctx, `SELECT data FROM update_chunks WHERE upload_id = $1 AND from_version = $2 AND n = $3`,
		r.upload, r.from, n).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("moat/postgres: bundle chunk missing")
	}
	if err != nil {
		return dbError("reading bundle", err)
	}
	if want := min(r.chunkSize, r.size-n*r.chunkSize); int64(len(data)) != want {
		return errors.New("moat/postgres: bundle chunk has the wrong size")
	}
	r.buf, r.loaded = data, n
	return nil
}

func (r *bundleReader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, errors.New("moat/postgres: seek in a closed bundle")
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("moat/postgres: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("moat/postgres: seek: negative position")
	}
	r.off = abs
	return abs, nil
}

func (r *bundleReader) Close() error {
	r.closed, r.buf = true, nil
	return nil
}

// releaseWriter stages one release.
type releaseWriter struct {
	s             *Updates
	upload        int64
	app, platform string
	version       uint64

	// finished is set by a successful Commit and by Abort; bundle writers
	// read it without taking mu.
	finished atomic.Bool

	mu        sync.Mutex
	bundles   map[uint64]*bundleWriter
	committed bool
	aborted   bool
}

var errFinished = errors.New("moat/postgres: release writer already finished")

func (w *releaseWriter) Bundle(ctx context.Context, from uint64) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished.Load() {
		return nil, errFinished
	}
	if from >= w.version {
		return nil, fmt.Errorf("%w: a bundle comes from an earlier version", update.ErrMalformed)
	}
	if _, dup := w.bundles[from]; dup {
		return nil, fmt.Errorf("moat/postgres: bundle from version %d written twice", from)
	}
	b := &bundleWriter{ctx: ctx, w: w, from: from}
	w.bundles[from] = b
	return b, nil
}

func (w *releaseWriter) Commit(ctx context.Context, rel update.Release) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished.Load() {
		return errFinished
	}
	if err := w.check(rel); err != nil {
		return err
	}
	err := inTx(ctx, w.s.db, "committing release", func(tx pgx.Tx) error {
		var latest int64
		err := tx.QueryRow(ctx, `
INSERT INTO update_channels AS c (app, platform, latest) VALUES ($1, $2, $3)
ON CONFLICT (app, platform) DO UPDATE SET latest = EXCLUDED.latest WHERE c.latest < EXCLUDED.latest
RETURNING latest`, w.app, w.platform, int64(w.version)).Scan(&latest)
		if errors.Is(err, pgx.ErrNoRows) {
			return update.ErrConflict
		}
		if err != nil {
			return dbError("committing release", err)
		}
		// The staged chunks must be what the writers counted.
		rows, err := tx.Query(ctx, `
SELECT from_version, count(*), coalesce(sum(octet_length(data)), 0)::bigint FROM update_chunks
WHERE upload_id = $1 GROUP BY from_version`, w.upload)
		if err != nil {
			return dbError("committing release", err)
		}
		staged := map[uint64]int64{}
		for rows.Next() {
			var from, count, size int64
			if err := rows.Scan(&from, &count, &size); err != nil {
				rows.Close()
				return dbError("committing release", err)
			}
			staged[uint64(from)] = size
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("committing release", err)
		}
		for _, b := range rel.Bundles {
			if staged[b.From] != b.Size {
				return fmt.Errorf("moat/postgres: staged bundle from version %d does not match what was written", b.From)
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE update_uploads SET committed = true WHERE id = $1 AND NOT committed`, w.upload)
		if err != nil {
			return dbError("committing release", err)
		}
		if tag.RowsAffected() == 0 {
			return errors.New("moat/postgres: the staged upload is gone (removed by DeleteAbandoned?)")
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO update_releases (app, platform, version, upload_id, app_versions, mandatory, created, expires, manifest)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			w.app, w.platform, int64(w.version), w.upload, rel.AppVersions, rel.Mandatory, rel.Created, rel.Expires, rel.Manifest); err != nil {
			return dbError("committing release", err)
		}
		for _, b := range rel.Bundles {
			if _, err := tx.Exec(ctx, `
INSERT INTO update_bundles (app, platform, version, from_version, size, etag, chunk_size)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				w.app, w.platform, int64(w.version), int64(b.From), b.Size, b.ETag, w.s.chunkSize); err != nil {
				return dbError("committing release", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.committed = true
	w.finished.Store(true)
	return nil
}

// check holds rel to what was written, as the core stores do: same
// identity, a manifest, a full bundle, and exactly the closed bundles
// with their sizes. The lock must be held.
func (w *releaseWriter) check(rel update.Release) error {
	if rel.App != w.app || rel.Platform != w.platform || rel.Version != w.version {
		return errors.New("moat/postgres: release record is for another app, platform or version than its writer")
	}
	if len(rel.Manifest) == 0 {
		return errors.New("moat/postgres: release has no manifest")
	}
	if _, ok := rel.Bundle(0); !ok {
		return errors.New("moat/postgres: release has no full bundle")
	}
	if len(rel.Bundles) != len(w.bundles) {
		return fmt.Errorf("moat/postgres: release lists %d bundles but %d were written", len(rel.Bundles), len(w.bundles))
	}
	seen := map[uint64]bool{}
	for _, b := range rel.Bundles {
		bw, ok := w.bundles[b.From]
		if !ok || seen[b.From] || b.ETag == "" {
			return fmt.Errorf("moat/postgres: release bundle from version %d does not match what was written", b.From)
		}
		size, closed := bw.result()
		if !closed || size != b.Size {
			return fmt.Errorf("moat/postgres: release bundle from version %d does not match what was written", b.From)
		}
		seen[b.From] = true
	}
	return nil
}

func (w *releaseWriter) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.aborted {
		return nil
	}
	w.finished.Store(true)
	if _, err := w.s.db.Exec(ctx, `DELETE FROM update_uploads WHERE id = $1 AND NOT committed`, w.upload); err != nil {
		return dbError("aborting upload", err)
	}
	w.aborted = true
	return nil
}

// bundleWriter streams one bundle into chunk rows.
type bundleWriter struct {
	ctx  context.Context
	w    *releaseWriter
	from uint64

	mu     sync.Mutex
	buf    []byte
	n      int   // chunks written
	size   int64 // bytes accepted
	err    error // sticky
	closed bool
}

func (b *bundleWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("moat/postgres: write to a closed bundle")
	}
	if b.err != nil {
		return 0, b.err
	}
	chunk := b.w.s.chunkSize
	written := 0
	for len(p) > 0 {
		if b.buf == nil {
			b.buf = make([]byte, 0, chunk)
		}
		k := min(len(p), chunk-len(b.buf))
		b.buf = append(b.buf, p[:k]...)
		p = p[k:]
		written += k
		b.size += int64(k)
		if len(b.buf) == chunk {
			if err := b.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush inserts the buffered chunk. The lock must be held.
func (b *bundleWriter) flush() error {
	if b.w.finished.Load() {
		b.err = errFinished
		return b.err
	}
	_, err := b.w.s.db.Exec(b.ctx, `INSERT INTO update_chunks (upload_id, from_version, n, data) VALUES ($1, $2, $3, $4)`,
		b.w.upload, int64(b.from), b.n, b.buf)
	if err != nil {
		b.err = dbError("writing bundle", err)
		return b.err
	}
	b.n++
	b.buf = b.buf[:0]
	return nil
}

func (b *bundleWriter) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	if b.err != nil {
		return b.err
	}
	if len(b.buf) > 0 {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.buf = nil
	b.closed = true
	return nil
}

// result reports the bundle's size and whether it was closed without
// error.
func (b *bundleWriter) result() (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size, b.closed && b.err == nil
}
