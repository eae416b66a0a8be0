package securestore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Users keeps one store per user under one directory, each locked by its
// own passcode (or key provider), as an app shared by several people on
// one device needs. A user's store is a [DirBackend] in a subdirectory
// whose name is the hex encoding of the user name: user names are visible
// to whoever can list the directory; their data is not.
type Users struct {
	root string
}

// NewUsers returns the users under root, creating it (mode 0700) if
// needed.
func NewUsers(root string) (*Users, error) {
	if root == "" {
		return nil, errors.New("moat/securestore: empty directory name")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	return &Users{root: root}, nil
}

const userPrefix = "u-"

// MaxUserLen is the longest user name in bytes, so that its directory
// name stays within 255 bytes.
const MaxUserLen = 120

func (u *Users) dir(user string) (string, error) {
	if user == "" || len(user) > MaxUserLen {
		return "", fmt.Errorf("%w: user name", ErrInvalidKey)
	}
	return filepath.Join(u.root, userPrefix+hex.EncodeToString([]byte(user))), nil
}

// Create makes a new store for user, locked by ks. It is ErrExists if the
// user has one.
func (u *Users) Create(ctx context.Context, user string, ks KeySource, cfg Config) (*Store, error) {
	dir, err := u.dir(user)
	if err != nil {
		return nil, err
	}
	b, err := NewDirBackend(dir)
	if err != nil {
		return nil, err
	}
	return Create(ctx, b, ks, cfg)
}

// Open opens user's store with ks: ErrNoStore if the user has none,
// ErrWrongPasscode if ks does not unlock it.
func (u *Users) Open(ctx context.Context, user string, ks KeySource) (*Store, error) {
	dir, err := u.dir(user)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoStore
	}
	b, err := NewDirBackend(dir)
	if err != nil {
		return nil, err
	}
	return Open(ctx, b, ks)
}

// List returns the users that have a store, sorted.
func (u *Users) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(u.root)
	if err != nil {
		return nil, fmt.Errorf("moat/securestore: %w", err)
	}
	var users []string
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), userPrefix)
		raw, err := hex.DecodeString(name)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(u.root, e.Name(), headerName)); err == nil {
			users = append(users, string(raw))
		}
	}
	slices.Sort(users)
	return users, nil
}

// Remove deletes user's store and every record in it, for good. Removing
// a user without a store is not an error.
func (u *Users) Remove(ctx context.Context, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := u.dir(user)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("moat/securestore: %w", err)
	}
	return nil
}
