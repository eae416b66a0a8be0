package update

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An installation directory holds:
//
//	current -> vN        symbolic link to the installed version
//	previous -> vM       symbolic link to the version before it (rollback)
//	vN/manifest.json     the signed manifest of version N
//	vN/files/...         the web resources of version N
//	root.json            the newest trusted root
//	rejected             the version a rollback moved away from
//	.lock                held during apply and rollback
//	.stage-*, .download-*, .tmp-*   work files, removed on the next apply
//
// Apps serve DIR/current/files. Switching versions replaces the current
// link by rename(2), which is atomic: at every instant current names a
// complete version, the old one or the new one.
const (
	linkCurrent  = "current"
	linkPrevious = "previous"
	filesDir     = "files"
	rootFile     = "root.json"
	rejectedFile = "rejected"
	lockName     = ".lock"
)

func versionDir(v uint64) string { return "v" + strconv.FormatUint(v, 10) }

// readLink returns the version a link of dir names, 0 if it does not
// exist.
func readLink(dir, name string) (uint64, error) {
	t, err := os.Readlink(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(t, "v")
	v, perr := strconv.ParseUint(n, 10, 64)
	if !ok || perr != nil || v == 0 || versionDir(v) != t {
		return 0, fmt.Errorf("moat/update: %s link names %q, not a version directory", name, t)
	}
	return v, nil
}

// installedManifest returns the manifest of the installed version, or
// (0, nil, nil) when nothing is installed. The installation directory is
// trusted: its manifest was verified when it was installed.
func installedManifest(dir string) (*Manifest, error) {
	v, err := readLink(dir, linkCurrent)
	if err != nil || v == 0 {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, versionDir(v), "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("moat/update: installed version %d: %w", v, err)
	}
	m, err := readManifestUnverified(b)
	if err != nil {
		return nil, fmt.Errorf("moat/update: installed version %d: %w", v, err)
	}
	if m.BundleVersion != v {
		return nil, fmt.Errorf("moat/update: installed version %d holds the manifest of version %d", v, m.BundleVersion)
	}
	return m, nil
}

// readLinks returns the versions the current and previous links name.
func readLinks(dir string) (cur, prev uint64, err error) {
	if cur, err = readLink(dir, linkCurrent); err != nil {
		return 0, 0, err
	}
	prev, err = readLink(dir, linkPrevious)
	return cur, prev, err
}

// lockDir takes the installation's lock without waiting: ErrInProgress
// when an apply or rollback holds it.
func lockDir(dir string) (unlock func(), err error) {
	unlock, err = lockFile(filepath.Join(dir, lockName), false)
	if errors.Is(err, errLocked) {
		return nil, ErrInProgress
	}
	if err != nil {
		return nil, diskError(err)
	}
	return unlock, nil
}

// replaceLink points dir/name at target atomically.
func replaceLink(dir, name, target string) error {
	tmp := filepath.Join(dir, ".tmp-link-"+randomSuffix())
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeFileAtomic replaces dir/name with data through a synced temporary
// file and a rename.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, ".tmp-"+randomSuffix())
	if err := writeFileSync(tmp, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanup removes work files and version directories that neither link
// names. The caller holds the lock.
func cleanup(dir string) error {
	cur, prev, err := readLinks(dir)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		remove := strings.HasPrefix(name, ".stage-") || strings.HasPrefix(name, ".download-") || strings.HasPrefix(name, ".tmp-")
		if n, ok := strings.CutPrefix(name, "v"); ok && e.IsDir() {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil && versionDir(v) == name && v != cur && v != prev {
				remove = true
			}
		}
		if remove {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// stager builds a version's tree in a fresh directory.
type stager struct {
	root     string // the .stage-* directory
	dirs     map[string]bool
	files    []string // written, to sync before the switch
	buf      []byte
	progress func(n int64)
}

// file creates path (relative, checked) in the stage and fills it with
// fill, then syncs it.
func (s *stager) file(path string, fill func(w io.Writer) error) error {
	dst := filepath.Join(s.root, filesDir, filepath.FromSlash(path))
	parent := filepath.Dir(dst)
	if !s.dirs[parent] {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return diskError(err)
		}
		for d := parent; d != s.root && !s.dirs[d]; d = filepath.Dir(d) {
			s.dirs[d] = true
		}
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return diskError(err)
	}
	err = fill(errWriter{&progressWriter{w: out, report: s.progress}})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = diskError(cerr)
	}
	s.files = append(s.files, dst)
	return err
}

// syncAll makes every file and directory of the stage durable: with one
// syncfs(2) of the file system where there is one (Linux, Android), else
// with an fsync of each file and directory after all are written.
func (s *stager) syncAll() error {
	if err := syncFileSystem(s.root); err == nil {
		return nil
	}
	for _, f := range s.files {
		if err := syncFile(f); err != nil {
			return diskError(err)
		}
	}
	dirs := make([]string, 0, len(s.dirs)+2)
	for d := range s.dirs {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(s.root, filesDir), s.root)
	for _, d := range dirs {
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return diskError(err)
		}
	}
	return nil
}

// syncFile flushes a written file to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyVerified copies an installed file into w, checking it still has the
// size and hash the manifest gives.
func copyVerified(src string, f File, w io.Writer, buf []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return integrity("installed file %q is missing", f.Path)
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(onlyReader{in}, f.Size+1), buf)
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return diskError(we.err)
		}
		return integrity("installed file %q cannot be read", f.Path)
	}
	if n != f.Size || [32]byte(h.Sum(nil)) != f.SHA256 {
		return integrity("installed file %q was modified; apply a full bundle", f.Path)
	}
	return nil
}

// stageVersion writes every file of m into the stage: from the bundle when
// it holds the file, else from the installed version at baseDir.
func (s *stager) stageVersion(m *Manifest, idx *bundleIndex, baseDir string) error {
	for _, f := range m.Files {
		e, inBundle := idx.entries[f.Path]
		err := s.file(f.Path, func(w io.Writer) error {
			if inBundle {
				return extractEntry(e, f.Size, &f.SHA256, w, s.buf)
			}
			return copyVerified(filepath.Join(baseDir, filesDir, filepath.FromSlash(f.Path)), f, w, s.buf)
		})
		if err != nil {
			return err
		}
	}
	if err := writeFileSync(filepath.Join(s.root, "manifest.json"), m.signed); err != nil {
		return diskError(err)
	}
	return s.syncAll()
}

// progressWriter reports written bytes.
type progressWriter struct {
	w      io.Writer
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.report != nil && n > 0 {
		p.report(int64(n))
	}
	return n, err
}

// diskError maps a full file system to ErrDiskSpace.
func diskError(err error) error {
	if err == nil {
		return nil
	}
	if isNoSpace(err) {
		return fmt.Errorf("%w: %v", ErrDiskSpace, err)
	}
	return fmt.Errorf("moat/update: %w", err)
}
