package pinning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// A DocumentStore keeps a client's last good pin-set document across
// restarts. A [Refresher] saves each newer document it verifies and loads
// the saved one at start, verifying it again. Both methods fail without
// effect when ctx is already done.
type DocumentStore interface {
	// Load returns the saved document, or ErrNotFound if there is none.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the saved document. It is atomic: a Load, concurrent
	// or after a crash, sees the old document or the new one whole, never
	// a mix. Save keeps no reference to doc.
	Save(ctx context.Context, doc []byte) error
}

var (
	_ DocumentStore = (*MemoryStore)(nil)
	_ DocumentStore = (*FileStore)(nil)
)

// MemoryStore is a [DocumentStore] in memory: for tests, and for clients
// that do not keep state across restarts. The zero value is ready to use.
type MemoryStore struct {
	mu  sync.Mutex
	doc []byte
}

// Load implements [DocumentStore].
func (m *MemoryStore) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.doc == nil {
		return nil, ErrNotFound
	}
	return append([]byte(nil), m.doc...), nil
}

// Save implements [DocumentStore].
func (m *MemoryStore) Save(ctx context.Context, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc = append(make([]byte, 0, len(doc)), doc...)
	return nil
}

// FileStore is a [DocumentStore] in one file. Save writes a temporary file
// in the same directory, syncs it and renames it over the old one, so a
// crash leaves the old document or the new one.
type FileStore struct {
	path string
	mu   sync.Mutex // serializes Saves in this process
}

// NewFileStore returns a store keeping the document at path. The
// directory must exist; the file is created by the first Save.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("moat/pinning: NewFileStore needs a path")
	}
	return &FileStore{path: path}, nil
}

// Load implements [DocumentStore]. A file larger than [MaxDocumentBytes]
// is an error.
func (f *FileStore) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	file, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: loading pin-set document: %w", err)
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("moat/pinning: loading pin-set document: %w", err)
	}
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("moat/pinning: stored pin-set document is larger than %d bytes", MaxDocumentBytes)
	}
	return b, nil
}

// Save implements [DocumentStore].
func (f *FileStore) Save(ctx context.Context, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("moat/pinning: saving pin-set document: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(doc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("moat/pinning: saving pin-set document: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable. Platforms that cannot sync a
// directory (Windows) skip it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}
