package update

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

func readBundle(t *testing.T, s Store, v, from uint64) []byte {
	t.Helper()
	rc, _, err := s.OpenBundle(context.Background(), "com.example.app", "ios", v, from)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func TestPublishIsDeterministic(t *testing.T) {
	t.Parallel()
	for _, deflate := range []bool{false, true} {
		var bundles [][]byte
		for range 2 {
			store := NewMemoryStore()
			p, err := NewPublisher(PublisherConfig{Store: store, Keys: []crypto.Signer{testKeys()[0]}, Now: newClock().Now, Deflate: deflate})
			require.NoError(t, err)
			_, err = p.Publish(context.Background(), genTree(100, 1), ReleaseSpec{App: "com.example.app", Platform: "ios",
				AppVersions: "*", Version: 1, Expires: t0.Add(time.Hour)})
			require.NoError(t, err)
			bundles = append(bundles, readBundle(t, store, 1, 0))
		}
		require.Equal(t, bundles[0], bundles[1], "deflate=%v", deflate)

		zr, err := zip.NewReader(bytes.NewReader(bundles[0]), int64(len(bundles[0])))
		require.NoError(t, err)
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			require.Equal(t, uint16(dosDate1980Jan), f.ModifiedDate)
			require.Zero(t, f.ModifiedTime)
			require.Empty(t, f.Extra)
		}
		require.IsIncreasing(t, names)
		require.Len(t, names, len(genTree(100, 1)))
	}
}

func TestDeltasFromEveryEarlierVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for v := uint64(1); v <= 4; v++ {
		e.publish(genTree(120, v), v, false)
	}
	rel := e.mustRelease(4)
	require.Len(t, rel.Bundles, 4, "full plus deltas from 1, 2 and 3")
	full, _ := rel.Bundle(0)

	for from := uint64(1); from <= 3; from++ {
		d, ok := rel.Bundle(from)
		require.True(t, ok)
		require.Less(t, d.Size, full.Size)
		zb := readBundle(t, e.store, 4, from)
		zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
		require.NoError(t, err)
		require.Equal(t, deltaEntry, zr.File[len(zr.File)-1].Name)

		// Install version `from` in a fresh directory, then take the delta.
		dir := fastTempDir(t)
		c := e.client(func(c *ClientConfig) { c.Dir = dir })
		require.NoError(t, c.install(ctx, e, from))
		u, err := c.Check(ctx)
		require.NoError(t, err)
		require.Equal(t, from, u.From)
		require.NoError(t, c.Apply(ctx, u))
		requireTree(t, c.Path(), genTree(120, 4))
	}
}

// install puts version v in place through a full bundle from the store.
func (c *Client) install(ctx context.Context, e *env, v uint64) error {
	rel := e.mustRelease(v)
	m, err := readManifestUnverified(rel.Manifest)
	if err != nil {
		return err
	}
	u := &Update{Manifest: m, From: 0}
	u.bundleURL, _ = c.base.Parse("com.example.app/ios/bundles/" + strconv.FormatUint(v, 10) + "/full.zip")
	return c.Apply(ctx, u)
}

func itoa(v uint64) string { return string(appendUint(nil, v)) }

func appendUint(b []byte, v uint64) []byte {
	if v >= 10 {
		b = appendUint(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	spec := ReleaseSpec{App: "com.example.app", Platform: "ios", AppVersions: "*", Version: 2, Expires: t0.Add(time.Hour)}
	_, err := e.pub.Publish(ctx, genTree(3, 1), spec)
	require.NoError(t, err)

	_, err = e.pub.Publish(ctx, genTree(3, 1), spec)
	require.ErrorIs(t, err, ErrConflict, "same version")
	spec.Version = 1
	_, err = e.pub.Publish(ctx, genTree(3, 1), spec)
	require.ErrorIs(t, err, ErrConflict, "older version")

	spec.Version = 3
	_, err = e.pub.Publish(ctx, fstest.MapFS{"A.txt": {}, "a.txt": {}}, spec)
	require.ErrorIs(t, err, ErrUnsafePath)
	_, err = e.pub.Publish(ctx, fstest.MapFS{".moat/x": {}}, spec)
	require.ErrorIs(t, err, ErrUnsafePath)
	_, err = e.pub.Publish(ctx, fstest.MapFS{"link": {Mode: os.ModeSymlink}}, spec)
	require.Error(t, err)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "evil")))
	_, err = e.pub.Publish(ctx, os.DirFS(dir), spec)
	require.ErrorContains(t, err, "symbolic link")

	bad := spec
	bad.Expires = t0
	_, err = e.pub.Publish(ctx, genTree(3, 1), bad)
	require.ErrorIs(t, err, ErrMalformed)

	// A key the root does not list: the publisher refuses to commit.
	p, err := NewPublisher(PublisherConfig{Store: e.store, Keys: []crypto.Signer{testKeys()[1]}, Root: e.root, Now: e.clock.Now})
	require.NoError(t, err)
	_, err = p.Publish(ctx, genTree(3, 1), spec)
	require.ErrorIs(t, err, ErrSignature)
	require.EqualValues(t, 2, latest(mustReleases(t, e.store)))

	_, err = NewPublisher(PublisherConfig{Store: e.store})
	require.Error(t, err)
	_, err = NewPublisher(PublisherConfig{Keys: []crypto.Signer{testKeys()[0]}})
	require.Error(t, err)
}

func mustReleases(t *testing.T, s Store) []Release {
	rels, err := s.Releases(context.Background(), "com.example.app", "ios")
	require.NoError(t, err)
	return rels
}

func TestFileStoreLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := NewFileStore(dir)
	require.NoError(t, err)
	p, err := NewPublisher(PublisherConfig{Store: store, Keys: []crypto.Signer{testKeys()[0]}, Now: newClock().Now})
	require.NoError(t, err)
	for v := uint64(1); v <= 2; v++ {
		_, err = p.Publish(context.Background(), genTree(10, v), ReleaseSpec{App: "com.example.app", Platform: "ios",
			AppVersions: "*", Version: v, Expires: t0.Add(time.Hour)})
		require.NoError(t, err)
	}
	for _, f := range []string{"1/manifest.json", "1/full.zip", "2/manifest.json", "2/full.zip", "2/from-1.zip", "2/release.json"} {
		require.FileExists(t, filepath.Join(dir, "com.example.app", "ios", filepath.FromSlash(f)))
	}
}
