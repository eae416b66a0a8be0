package update

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// A bundle is a zip archive (APPNOTE 6.3) of a version's files. A full
// bundle holds every file of the manifest; a differential bundle, from an
// earlier version F to version T, holds the files that are new or changed
// since F plus deltaEntry, the list of files to delete. Bundles are
// deterministic: entries sorted by path, no directory entries, fixed
// timestamps and modes, so the same tree always gives the same bytes.
const (
	deltaEntry     = reservedDir + "/delta.json"
	deltaType      = "moat.update.delta.v1"
	maxDeltaBytes  = 16 << 20
	dosDate1980Jan = 1<<5 | 1 // 1980-01-01 in MS-DOS date format
)

// deltaPayload is the content of deltaEntry.
type deltaPayload struct {
	Type    string   `json:"type"`
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	Deleted []string `json:"deleted"`
}

// bundleWriter writes a deterministic bundle.
type bundleWriter struct {
	zw     *zip.Writer
	method uint16
}

func newBundleWriter(w io.Writer, deflate bool) *bundleWriter {
	b := &bundleWriter{zw: zip.NewWriter(w), method: zip.Store}
	if deflate {
		b.method = zip.Deflate
		b.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			if fw, ok := flatePool.Get().(*flate.Writer); ok {
				fw.Reset(w)
				return pooledFlate{fw}, nil
			}
			fw, err := flate.NewWriter(w, flate.BestSpeed)
			return pooledFlate{fw}, err
		})
	}
	return b
}

// create starts the entry for path; write its content to the result.
func (b *bundleWriter) create(path string) (io.Writer, error) {
	h := &zip.FileHeader{Name: path, Method: b.method, ModifiedDate: dosDate1980Jan}
	h.SetMode(0o644)
	return b.zw.CreateHeader(h)
}

// writeDelta adds the delta description.
func (b *bundleWriter) writeDelta(d deltaPayload) error {
	d.Type = deltaType
	if d.Deleted == nil {
		d.Deleted = []string{}
	}
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	w, err := b.create(deltaEntry)
	if err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

func (b *bundleWriter) close() error { return b.zw.Close() }

// flatePool reuses compressors: each holds about a megabyte.
var flatePool sync.Pool

type pooledFlate struct{ *flate.Writer }

func (p pooledFlate) Close() error {
	err := p.Writer.Close()
	flatePool.Put(p.Writer)
	return err
}

// bundleIndex is a bundle's directory, checked against the manifest it
// should bring the installation to.
type bundleIndex struct {
	// entries maps a manifest path to its archive entry; paths of the
	// manifest missing here are unchanged since the delta's base version.
	entries map[string]*zip.File
	// delta is true for a differential bundle.
	delta bool
}

// readBundleIndex reads the zip directory of a bundle of size bytes and
// checks it against m, the manifest of the version it installs, and base,
// the installed version's manifest for a differential bundle (nil for a
// full one). Only Store and Deflate entries whose uncompressed size is the
// manifest's size are accepted; any entry the manifest does not list, a
// duplicate, a directory or an unsafe name is refused. The content itself
// is checked while extracting (see extractEntry).
func readBundleIndex(r io.ReaderAt, size int64, m *Manifest, base *Manifest) (*bundleIndex, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if errors.Is(err, zip.ErrInsecurePath) {
			return nil, unsafePath("archive entry name escapes the target directory")
		}
		return nil, integrity("bundle is not a readable zip archive")
	}
	if len(zr.File) > len(m.Files)+1 {
		return nil, fmt.Errorf("%w: %w: bundle has more entries than the manifest has files", ErrIntegrity, ErrTooLarge)
	}
	want := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		want[f.Path] = f
	}
	idx := &bundleIndex{entries: make(map[string]*zip.File, len(zr.File)), delta: base != nil}
	var deltaFile *zip.File
	for _, e := range zr.File {
		if e.Flags&0x1 != 0 {
			return nil, integrity("archive entry is encrypted")
		}
		if e.Method != zip.Store && e.Method != zip.Deflate {
			return nil, integrity("archive entry uses an unsupported compression method")
		}
		if e.Name == deltaEntry {
			if base == nil || deltaFile != nil {
				return nil, integrity("unexpected delta description in the bundle")
			}
			if e.UncompressedSize64 > maxDeltaBytes {
				return nil, fmt.Errorf("%w: %w: delta description too large", ErrIntegrity, ErrTooLarge)
			}
			deltaFile = e
			continue
		}
		if err := checkPath(e.Name); err != nil {
			return nil, err
		}
		f, ok := want[e.Name]
		if !ok {
			return nil, integrity("bundle holds a file the manifest does not list")
		}
		if _, dup := idx.entries[e.Name]; dup {
			return nil, integrity("bundle holds a file twice")
		}
		if e.UncompressedSize64 != uint64(f.Size) {
			return nil, fmt.Errorf("%w: %w: archive entry size differs from the manifest", ErrIntegrity, ErrTooLarge)
		}
		idx.entries[e.Name] = e
	}
	if base == nil {
		if len(idx.entries) != len(m.Files) {
			return nil, integrity("full bundle lacks files the manifest lists")
		}
		return idx, nil
	}
	if deltaFile == nil {
		return nil, integrity("differential bundle lacks its delta description")
	}
	if err := checkDelta(deltaFile, m, base, idx); err != nil {
		return nil, err
	}
	return idx, nil
}

// checkDelta checks a delta description against the two manifests and the
// files the bundle holds: the deletions must be exactly the base files
// missing from m, and every file of m absent from the bundle must be in
// base with the same size and hash.
func checkDelta(e *zip.File, m, base *Manifest, idx *bundleIndex) error {
	var body bytes.Buffer
	if err := extractEntry(e, -1, nil, &body, nil); err != nil {
		return err
	}
	var d deltaPayload
	if err := decodeStrict(body.Bytes(), &d, "type", "from", "to", "deleted"); err != nil {
		return integrity("delta description is malformed")
	}
	if d.Type != deltaType || d.From != base.BundleVersion || d.To != m.BundleVersion {
		return integrity("differential bundle is not from the installed version to the manifest's")
	}
	inNew := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		inNew[f.Path] = f
	}
	var deleted []string
	inBase := make(map[string]File, len(base.Files))
	for _, f := range base.Files {
		inBase[f.Path] = f
		if _, ok := inNew[f.Path]; !ok {
			deleted = append(deleted, f.Path)
		}
	}
	if !slices.Equal(deleted, d.Deleted) {
		return integrity("delta deletion list does not match the manifests")
	}
	for _, f := range m.Files {
		if _, ok := idx.entries[f.Path]; ok {
			continue
		}
		if old, ok := inBase[f.Path]; !ok || old.SHA256 != f.SHA256 || old.Size != f.Size {
			return integrity("differential bundle lacks a file that changed since the installed version")
		}
	}
	return nil
}

// extractEntry decompresses e into dst, refusing more than size bytes (a
// zip bomb) or a content whose length or SHA-256 differs from the expected
// ones. size < 0 means "up to maxDeltaBytes, hash not checked". buf is a
// copy buffer (nil: allocate one). Errors writing dst must come wrapped in
// *writeError (see errWriter) to be told apart from a corrupt archive.
func extractEntry(e *zip.File, size int64, sum *[32]byte, dst io.Writer, buf []byte) error {
	rc, err := e.Open()
	if err != nil {
		return integrity("archive entry cannot be opened")
	}
	defer rc.Close()
	limit := size
	if size < 0 {
		limit = maxDeltaBytes
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(dst, h), io.LimitReader(rc, limit+1), buf)
	var pe *writeError
	switch {
	case errors.As(err, &pe):
		return diskError(pe.err)
	case n > limit || errors.Is(err, zip.ErrFormat):
		// archive/zip itself stops with ErrFormat when an entry inflates
		// past its declared size.
		return fmt.Errorf("%w: %w: archive entry inflates beyond its declared size", ErrIntegrity, ErrTooLarge)
	case err != nil:
		return integrity("archive entry is corrupt")
	}
	if size >= 0 && n != size {
		return integrity("archive entry is shorter than the manifest says")
	}
	if sum != nil && !bytes.Equal(h.Sum(nil), sum[:]) {
		return integrity("file content does not match its SHA-256 in the manifest")
	}
	return nil
}

// writeError marks an error from the destination of a copy (a disk
// error), as opposed to the archive being corrupt.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// errWriter wraps w so that its errors come out as *writeError.
type errWriter struct{ w io.Writer }

func (e errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}
