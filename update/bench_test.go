package update

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeTree writes about total bytes of pseudo-random (incompressible)
// files of varied sizes under dir, the shape of a web bundle's assets.
func writeTree(t testing.TB, dir string, total int64, maxFile int) int64 {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	buf := make([]byte, maxFile)
	var n int64
	for i := 0; n < total; i++ {
		size := min(int64(1+rng.IntN(maxFile)), total-n)
		for j := range buf[:size] {
			buf[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%16), fmt.Sprintf("asset-%05d.bin", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, buf[:size], 0o644))
		n += size
	}
	return n
}

// discardStore is a Store whose bundles go nowhere: it measures the
// publisher's own work.
type discardStore struct{ MemoryStore }

type discardWriter struct{}

func (discardWriter) Bundle(context.Context, uint64) (io.WriteCloser, error) {
	return nopWriteCloser{}, nil
}
func (discardWriter) Commit(context.Context, Release) error { return nil }
func (discardWriter) Abort(context.Context) error           { return nil }

type nopWriteCloser struct{}

func (nopWriteCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriteCloser) Close() error                { return nil }

func (*discardStore) Releases(context.Context, string, string) ([]Release, error) { return nil, nil }
func (*discardStore) Create(context.Context, string, string, uint64) (ReleaseWriter, error) {
	return discardWriter{}, nil
}

// BenchmarkPublish packs a generated 100 MB tree. sha256-floor reads and
// hashes the same files, the least any publisher must do; publish is the
// publisher with its bundles discarded (the target: ≥ 70% of the floor's
// throughput); publish-deflate compresses; publish-filestore adds a file
// store that syncs its bundles to disk.
func BenchmarkPublish(b *testing.B) {
	dir := fastTempDir(b)
	total := writeTree(b, dir, 100<<20, 256<<10)
	src := os.DirFS(dir)
	paths, err := listTree(src)
	require.NoError(b, err)
	spec := ReleaseSpec{App: "com.example.app", Platform: "ios", AppVersions: "*", Version: 1, Expires: time.Now().Add(time.Hour)}
	keys := []crypto.Signer{testKeys()[0]}

	b.Run("sha256-floor", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		buf := make([]byte, copyBufSize)
		for b.Loop() {
			h := sha256.New()
			for _, p := range paths {
				f, err := src.Open(p)
				require.NoError(b, err)
				h.Reset()
				_, err = io.CopyBuffer(h, onlyReader{f}, buf)
				require.NoError(b, err)
				f.Close()
				_ = h.Sum(nil)
			}
		}
	})
	run := func(name string, deflate bool, store func(b *testing.B) Store) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := store(b)
				p, err := NewPublisher(PublisherConfig{Store: s, Keys: keys, Deflate: deflate})
				require.NoError(b, err)
				b.StartTimer()
				_, err = p.Publish(context.Background(), src, spec)
				require.NoError(b, err)
			}
		})
	}
	discard := func(*testing.B) Store { return &discardStore{} }
	run("publish", false, discard)
	run("publish-deflate", true, discard)
	run("publish-filestore", false, func(b *testing.B) Store {
		s, err := NewFileStore(b.TempDir())
		require.NoError(b, err)
		return s
	})
}

// heapSampler records the peak heap in use above a baseline while it runs.
type heapSampler struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler(every time.Duration) *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &heapSampler{base: ms.HeapInuse, stop: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > s.base && ms.HeapInuse-s.base > s.peak.Load() {
				s.peak.Store(ms.HeapInuse - s.base)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	})
	return s
}

// done stops sampling and returns the peak growth in bytes.
func (s *heapSampler) done() uint64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak.Load()
}

// applyBig publishes a generated tree of size bytes (files up to maxFile)
// to a file store and returns an env whose client will apply it.
func applyBig(t testing.TB, size int64, maxFile int) (*env, fs.FS) {
	e := newEnv(t)
	fsStore, err := NewFileStore(fastTempDir(t))
	require.NoError(t, err)
	e.store = fsStore
	e.pub, err = NewPublisher(PublisherConfig{Store: fsStore, Keys: []crypto.Signer{e.key}, Now: e.clock.Now})
	require.NoError(t, err)
	e.server, err = NewServer(ServerConfig{Store: fsStore, Roots: [][]byte{e.root}, Now: e.clock.Now, CacheTTL: -1})
	require.NoError(t, err)
	e.http = httptest.NewServer(e.server)
	t.Cleanup(e.http.Close)
	dir := fastTempDir(t)
	writeTree(t, dir, size, maxFile)
	src := os.DirFS(dir)
	e.publish(src, 1, false)
	return e, src
}

// TestApplyMemoryBounded applies a bundle whose one file is larger than
// the memory budget: the heap may not grow by 16 MiB, so nothing buffers a
// whole file or bundle.
// It does not run in parallel: other tests would allocate meanwhile.
func TestApplyMemoryBounded(t *testing.T) {
	e, _ := applyBig(t, 24<<20, 24<<20)
	c := e.client()
	s := startHeapSampler(time.Millisecond)
	_, err := c.Update(context.Background())
	peak := s.done()
	require.NoError(t, err)
	t.Logf("peak heap growth applying 24 MiB: %.1f MiB", float64(peak)/(1<<20))
	require.Less(t, peak, uint64(16<<20))
}

// BenchmarkApply200MB installs a 200 MB full bundle (1 MB files) served
// over loopback and reports the peak heap growth (target: < 16 MiB).
func BenchmarkApply200MB(b *testing.B) {
	e, _ := applyBig(b, 200<<20, 1<<20)
	b.SetBytes(200 << 20)
	b.ReportAllocs()
	var peak uint64
	i := 0
	for b.Loop() {
		b.StopTimer()
		c := e.client(func(c *ClientConfig) { c.Dir = filepath.Join(fastTempDir(b), fmt.Sprint(i)) })
		i++
		s := startHeapSampler(time.Millisecond)
		b.StartTimer()
		_, err := c.Update(context.Background())
		b.StopTimer()
		peak = max(peak, s.done())
		require.NoError(b, err)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-growth-MiB")
}
