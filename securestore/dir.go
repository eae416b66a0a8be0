package securestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// DirBackend is a [Backend] that keeps each name in a file of one
// directory. Writes are atomic and durable: the value goes to a temporary
// file in the same directory, which is synced, renamed over the name, and
// the directory is synced, so after a crash or power loss a name holds its
// old value or its new one.
//
// One process at a time should write a directory; DirBackend does not lock
// it against other processes.
type DirBackend struct {
	dir string
}

var _ Backend = (*DirBackend)(nil)

const tmpPrefix = ".tmp-"

// NewDirBackend returns a backend over dir, creating it (mode 0700) if it
// does not exist. Temporary files left by a crash more than an hour ago are
// removed.
func NewDirBackend(dir string) (*DirBackend, error) {
	if dir == "" {
		return nil, errors.New("moat/securestore: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("moat/securestore: %s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &DirBackend{dir: dir}, nil
}

// Dir returns the backend's directory.
func (d *DirBackend) Dir() string { return d.dir }

// Get implements [Backend].
func (d *DirBackend) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	return b, nil
}

// Put implements [Backend]: temporary file, fsync, rename, fsync of the
// directory.
func (d *DirBackend) Put(ctx context.Context, name string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(value); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, name)); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	done = true
	return d.syncDir()
}

// Delete implements [Backend].
func (d *DirBackend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	return d.syncDir()
}

// List implements [Backend]. Temporary files and anything else that is
// not a valid name are not listed.
func (d *DirBackend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	var out []string
	for _, e := range entries { // ReadDir sorts by name
		if n := e.Name(); e.Type().IsRegular() && ValidName(n) && strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// syncDir makes a rename or removal durable. Windows cannot sync a
// directory handle; there a rename is as durable as NTFS makes it.
func (d *DirBackend) syncDir() error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	return nil
}
