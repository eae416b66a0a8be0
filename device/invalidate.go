package device

import (
	"context"
	"sync"
)

// Invalidation names cached state that changed.
type Invalidation struct {
	// DeviceID, when set, says the status of this device or of an app on
	// it changed.
	DeviceID string `json:"device_id,omitempty"`
	// AppID and Platform, when set, say the version policy of this app on
	// this platform changed.
	AppID    string `json:"app_id,omitempty"`
	Platform string `json:"platform,omitempty"`
	// All says every cached entry must go: an implementation delivers it
	// when it may have missed invalidations (after reconnecting to its
	// broker, for example).
	All bool `json:"all,omitempty"`
}

// Invalidator carries cache invalidations from the instance that made a
// change to every [Control] that may have cached the old state, in this
// process and, for shared implementations, in every other one.
//
// [LocalInvalidator] delivers within one process. A Redis implementation
// (in github.com/moatsec/moat/stores/redis) publishes each invalidation
// on a channel that every instance subscribes to, and delivers
// Invalidation{All: true} to its subscribers whenever its subscription
// (re)connects, since it may have missed messages while disconnected.
// Without a shared implementation, instances sharing a PostgreSQL store
// see each other's changes only after their cache entries expire
// (Config.CacheTTL).
type Invalidator interface {
	// Publish delivers inv to every subscriber. An error means some
	// subscribers (other instances) may not have received it.
	Publish(ctx context.Context, inv Invalidation) error
	// Subscribe calls f for every invalidation published after it
	// returns, until cancel is called. f must not block.
	Subscribe(f func(Invalidation)) (cancel func())
}

// LocalInvalidator is the in-process [Invalidator]. Its zero value is
// ready to use.
type LocalInvalidator struct {
	mu   sync.RWMutex
	next uint64
	subs map[uint64]func(Invalidation)
}

var _ Invalidator = (*LocalInvalidator)(nil)

// Publish calls every subscriber before returning. It never fails.
func (l *LocalInvalidator) Publish(ctx context.Context, inv Invalidation) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, f := range l.subs {
		f(inv)
	}
	return nil
}

// Subscribe implements [Invalidator].
func (l *LocalInvalidator) Subscribe(f func(Invalidation)) (cancel func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.subs == nil {
		l.subs = map[uint64]func(Invalidation){}
	}
	id := l.next
	l.next++
	l.subs[id] = f
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs, id)
	}
}
