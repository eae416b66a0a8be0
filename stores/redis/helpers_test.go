package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// addrEnv names the variable holding the address of the Redis the tests
// run against. Without it, the tests that need Redis skip.
const addrEnv = "MOAT_TEST_REDIS_ADDR"

// redisAddr returns the test Redis address, skipping the test when none is
// configured.
func redisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv(addrEnv)
	if addr == "" {
		t.Skip("needs a Redis server: run MOAT_TEST_REDIS_ADDR=127.0.0.1:6379 go test ./...")
	}
	return addr
}

// newClient returns a client of the test Redis, closed after the test. With
// MOAT_TEST_REDIS_ADDR set, a server that does not answer fails the test:
// it never skips silently.
func newClient(t *testing.T, opts ...func(*goredis.Options)) *goredis.Client {
	t.Helper()
	addr := redisAddr(t)
	o := &goredis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, PoolSize: 32}
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s=%s is set but Redis does not answer there: %v\n"+
			"start one (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no) or unset %s to skip",
			addrEnv, addr, err, addrEnv)
	}
	return c
}

// newPrefix returns a prefix no other test (or run) uses, and deletes
// every key under it when the test ends. c must outlive the test.
func newPrefix(t *testing.T, c goredis.UniversalClient) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "moattest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up %s*: %v", prefix, err)
			return
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("cleaning up %s*: %v", prefix, err)
				return
			}
			keys = keys[n:]
		}
	})
	return prefix
}

// newStore returns a Store on c under a fresh prefix.
func newStore(t *testing.T, c goredis.UniversalClient) *Store {
	t.Helper()
	s, err := New(c, Config{Prefix: newPrefix(t, c)})
	require.NoError(t, err)
	return s
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// proxy forwards TCP connections to a Redis server and can turn the
// connections it holds into black holes: they stay open but nothing
// crosses them any more, like a peer that vanished without a FIN.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*proxyConn
	wg     sync.WaitGroup
}

type proxyConn struct {
	a, b net.Conn
	dead atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln.Addr().String()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	p.mu.Lock()
	ln := p.ln
	p.mu.Unlock()
	for {
		a, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = a.Close()
			continue
		}
		pc := &proxyConn{a: a, b: b}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pc, a, b)
		go p.pipe(pc, b, a)
	}
}

func (p *proxy) pipe(pc *proxyConn, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			_ = pc.a.Close()
			_ = pc.b.Close()
			return
		}
		if pc.dead.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil && !pc.dead.Load() {
			_ = pc.a.Close()
			_ = pc.b.Close()
			return
		}
	}
}

// blackhole silences every connection open now; later ones work.
func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.dead.Store(true)
	}
}

// reopen listens again on the address of a closed proxy.
func (p *proxy) reopen(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr())
	require.NoError(t, err)
	p.mu.Lock()
	p.ln, p.conns = ln, nil
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept()
}

func (p *proxy) close() {
	p.mu.Lock()
	ln := p.ln
	p.mu.Unlock()
	_ = ln.Close()
	p.mu.Lock()
	for _, pc := range p.conns {
		_ = pc.a.Close()
		_ = pc.b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
