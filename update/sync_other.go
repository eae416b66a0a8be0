//go:build !linux

package update

import "errors"

// syncFileSystem is unavailable here: files are synced one by one.
func syncFileSystem(string) error { return errors.ErrUnsupported }
