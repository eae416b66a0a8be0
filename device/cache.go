package device

import (
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// The caches below keep status and policy reads for a short TTL. A fill
// that raced with an invalidation is dropped: a filler reads the
// generation before it reads the store and inserts only if no
// invalidation happened since, so a cache never keeps a value read before
// a change it was told about.

const stateShards = 16

// maxAppsCachedPerDevice bounds the per-device list of cached app states.
const maxAppsCachedPerDevice = 16

type stateEntry struct {
	st      State
	found   bool
	expires int64 // clock() nanoseconds
}

type appState struct {
	app string
	e   stateEntry
}

// stateCache maps a device id to the states of the apps checked on it
// (usually one), so a lookup hashes one string.
type stateCache struct {
	seed     maphash.Seed
	perShard int
	gen      atomic.Uint64
	shards   [stateShards]stateShard
}

type stateShard struct {
	mu sync.RWMutex
	m  map[string][]appState
	_  [40]byte // keep shards on separate cache lines
}

func newStateCache(size int) *stateCache {
	c := &stateCache{seed: maphash.MakeSeed(), perShard: max(1, size/stateShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]appState)
	}
	return c
}

func (c *stateCache) shard(device string) *stateShard {
	return &c.shards[maphash.String(c.seed, device)%stateShards]
}

func (c *stateCache) get(device, app string, now int64) (stateEntry, bool) {
	s := c.shard(device)
	s.mu.RLock()
	for i, apps := 0, s.m[device]; i < len(apps); i++ {
		if apps[i].app == app {
			e := apps[i].e
			s.mu.RUnlock()
			return e, now < e.expires
		}
	}
	s.mu.RUnlock()
	return stateEntry{}, false
}

// put inserts e unless an invalidation happened since gen was read.
func (c *stateCache) put(device, app string, e stateEntry, gen uint64) {
	s := c.shard(device)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	apps, ok := s.m[device]
	if !ok && len(s.m) >= c.perShard {
		// Evict an arbitrary eighth (map order is unspecified), expired or not.
		n := max(1, len(s.m)/8)
		for k := range s.m {
			delete(s.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	for i := range apps {
		if apps[i].app == app {
			apps[i].e = e
			return
		}
	}
	if len(apps) >= maxAppsCachedPerDevice {
		apps = apps[1:]
	}
	s.m[device] = append(apps, appState{app: app, e: e})
}

func (c *stateCache) invalidateDevice(device string) {
	c.gen.Add(1)
	s := c.shard(device)
	s.mu.Lock()
	delete(s.m, device)
	s.mu.Unlock()
}

func (c *stateCache) invalidateAll() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

// policyCache is copy-on-write: reads load a map without locking, fills
// and invalidations replace it. There are few policies and they change
// rarely. It maps an app id to its platforms' entries, so a lookup hashes
// one string.
type policyCache struct {
	mu  sync.Mutex // serializes writers
	gen atomic.Uint64
	m   atomic.Pointer[map[string][]policySlot]
	n   int // entries in the current map; guarded by mu
}

type policySlot struct {
	platform string
	e        policyEntry
}

type policyEntry struct {
	p       *compiledPolicy // nil: no policy
	expires int64
}

// maxCachedPolicies bounds the policy cache; beyond it the map starts over.
const maxCachedPolicies = 4096

func newPolicyCache() *policyCache {
	c := &policyCache{}
	c.m.Store(&map[string][]policySlot{})
	return c
}

func (c *policyCache) get(app, platform string, now int64) (policyEntry, bool) {
	slots := (*c.m.Load())[app]
	for i := range slots {
		if slots[i].platform == platform {
			return slots[i].e, now < slots[i].e.expires
		}
	}
	return policyEntry{}, false
}

// put inserts e unless an invalidation happened since gen was read.
func (c *policyCache) put(app, platform string, e policyEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	var m map[string][]policySlot
	if c.n >= maxCachedPolicies {
		m, c.n = map[string][]policySlot{}, 0
	} else {
		m = maps.Clone(*c.m.Load())
	}
	slots := slices.DeleteFunc(slices.Clone(m[app]), func(s policySlot) bool { return s.platform == platform })
	if len(slots) == len(m[app]) {
		c.n++
	}
	m[app] = append(slots, policySlot{platform: platform, e: e})
	c.m.Store(&m)
}

func (c *policyCache) invalidate(app, platform string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	m := maps.Clone(*c.m.Load())
	slots := slices.DeleteFunc(slices.Clone(m[app]), func(s policySlot) bool { return s.platform == platform })
	c.n -= len(m[app]) - len(slots)
	if len(slots) == 0 {
		delete(m, app)
	} else {
		m[app] = slots
	}
	c.m.Store(&m)
}

func (c *policyCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.m.Store(&map[string][]policySlot{})
	c.n = 0
}
