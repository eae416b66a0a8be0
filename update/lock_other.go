//go:build !unix

package update

import (
	"math"
	"sync"
)

var (
	locksMu sync.Mutex
	locks   = map[string]*sync.Mutex{}
)

// lockFile is an in-process lock on platforms without flock: it keeps two
// goroutines of one process apart, not two processes.
func lockFile(path string, wait bool) (func(), error) {
	locksMu.Lock()
	m, ok := locks[path]
	if !ok {
		m = &sync.Mutex{}
		locks[path] = m
	}
	locksMu.Unlock()
	if wait {
		m.Lock()
	} else if !m.TryLock() {
		return nil, errLocked
	}
	return m.Unlock, nil
}

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }

// freeSpace is unknown here; the apply relies on write errors instead.
func freeSpace(string) (uint64, error) { return math.MaxUint64, nil }

func isNoSpace(error) bool { return false }
