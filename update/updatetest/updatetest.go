// Package updatetest is the conformance suite for [update.Store]
// implementations. The memory and file stores run it in this module; a
// PostgreSQL or object-storage store runs it unchanged:
//
//	func TestConformance(t *testing.T) {
//		updatetest.Run(t, func(t *testing.T) update.Store {
//			s, err := update.NewFileStore(t.TempDir())
//			require.NoError(t, err)
//			return s
//		})
//	}
package updatetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/update"
)

// Run runs the suite. newStore returns an empty store (or one whose apps
// cannot collide with other tests' apps: the suite uses app ids starting
// with "updatetest.").
func Run(t *testing.T, newStore func(t *testing.T) update.Store) {
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := func(t *testing.T) string { return fmt.Sprintf("updatetest.app%d", time.Now().UnixNano()%1e9) }

	// write creates release v with a full bundle and the given deltas.
	write := func(t *testing.T, s update.Store, app string, v uint64, froms ...uint64) (update.ReleaseWriter, update.Release) {
		t.Helper()
		w, err := s.Create(ctx, app, "ios", v)
		require.NoError(t, err)
		rel := update.Release{App: app, Platform: "ios", Version: v, AppVersions: ">=1 <2", Mandatory: v%2 == 0,
			Created: created, Expires: created.Add(time.Hour), Manifest: []byte(fmt.Sprintf(`{"manifest":%d}`, v))}
		for _, from := range append([]uint64{0}, froms...) {
			bw, err := w.Bundle(ctx, from)
			require.NoError(t, err)
			body := bundleBody(v, from)
			_, err = bw.Write(body)
			require.NoError(t, err)
			require.NoError(t, bw.Close())
			rel.Bundles = append(rel.Bundles, update.BundleInfo{From: from, Size: int64(len(body)), ETag: fmt.Sprintf(`"%d-%d"`, v, from)})
		}
		return w, rel
	}
	publish := func(t *testing.T, s update.Store, app string, v uint64, froms ...uint64) update.Release {
		t.Helper()
		w, rel := write(t, s, app, v, froms...)
		require.NoError(t, w.Commit(ctx, rel))
		return rel
	}

	t.Run("EmptyChannel", func(t *testing.T) {
		s := newStore(t)
		rels, err := s.Releases(ctx, app(t), "ios")
		require.NoError(t, err)
		require.Empty(t, rels)
		_, _, err = s.OpenBundle(ctx, app(t), "ios", 1, 0)
		require.ErrorIs(t, err, update.ErrNotFound)
	})

	t.Run("CommitAndRead", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		r1 := publish(t, s, a, 1)
		r3 := publish(t, s, a, 3, 1)
		rels, err := s.Releases(ctx, a, "ios")
		require.NoError(t, err)
		require.Len(t, rels, 2)
		for i, want := range []update.Release{r1, r3} {
			got := rels[i]
			require.Equal(t, want.Version, got.Version)
			require.Equal(t, want.AppVersions, got.AppVersions)
			require.Equal(t, want.Mandatory, got.Mandatory)
			require.True(t, want.Created.Equal(got.Created))
			require.True(t, want.Expires.Equal(got.Expires))
			require.Equal(t, want.Manifest, got.Manifest)
			require.ElementsMatch(t, want.Bundles, got.Bundles)
		}
		for _, b := range r3.Bundles {
			rc, info, err := s.OpenBundle(ctx, a, "ios", 3, b.From)
			require.NoError(t, err)
			require.Equal(t, b, info)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, bundleBody(3, b.From), got)
		}
		rc, _, err := s.OpenBundle(ctx, a, "ios", 3, 1)
		require.NoError(t, err)
		_, err = rc.Seek(2, io.SeekStart)
		require.NoError(t, err)
		rest, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, bundleBody(3, 1)[2:], rest, "bundles are seekable (HTTP Range)")
		require.NoError(t, rc.Close())

		_, _, err = s.OpenBundle(ctx, a, "ios", 3, 2)
		require.ErrorIs(t, err, update.ErrNotFound)
		_, _, err = s.OpenBundle(ctx, a, "ios", 2, 0)
		require.ErrorIs(t, err, update.ErrNotFound)
		rels, err = s.Releases(ctx, a, "android")
		require.NoError(t, err)
		require.Empty(t, rels, "platforms are separate")
	})

	t.Run("NothingVisibleBeforeCommit", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		w, rel := write(t, s, a, 1)
		rels, err := s.Releases(ctx, a, "ios")
		require.NoError(t, err)
		require.Empty(t, rels)
		_, _, err = s.OpenBundle(ctx, a, "ios", 1, 0)
		require.ErrorIs(t, err, update.ErrNotFound)
		require.NoError(t, w.Commit(ctx, rel))
		require.NoError(t, w.Abort(ctx), "abort after commit is harmless")
		rels, err = s.Releases(ctx, a, "ios")
		require.NoError(t, err)
		require.Len(t, rels, 1)
	})

	t.Run("AbortDiscards", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		w, _ := write(t, s, a, 1)
		require.NoError(t, w.Abort(ctx))
		rels, err := s.Releases(ctx, a, "ios")
		require.NoError(t, err)
		require.Empty(t, rels)
		publish(t, s, a, 1) // the version is still free
	})

	t.Run("VersionsOnlyGrow", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		publish(t, s, a, 5)
		for _, v := range []uint64{5, 4} {
			w, err := s.Create(ctx, a, "ios", v)
			if err != nil {
				require.ErrorIs(t, err, update.ErrConflict)
				continue
			}
			bw, err := w.Bundle(ctx, 0)
			require.NoError(t, err)
			require.NoError(t, bw.Close())
			rel := update.Release{App: a, Platform: "ios", Version: v, Manifest: []byte("{}"), Bundles: []update.BundleInfo{{From: 0, Size: 0, ETag: `"x"`}}}
			require.ErrorIs(t, w.Commit(ctx, rel), update.ErrConflict)
			require.NoError(t, w.Abort(ctx))
		}
		rels, err := s.Releases(ctx, a, "ios")
		require.NoError(t, err)
		require.Len(t, rels, 1)
	})

	t.Run("ConcurrentCommitsOfOneVersion", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		const n = 4
		writers := make([]update.ReleaseWriter, n)
		rels := make([]update.Release, n)
		for i := range n {
			writers[i], rels[i] = write(t, s, a, 1)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = writers[i].Commit(ctx, rels[i]) })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			if err == nil {
				ok++
				continue
			}
			require.ErrorIs(t, err, update.ErrConflict)
			require.NoError(t, writers[i].Abort(ctx))
		}
		require.Equal(t, 1, ok, "exactly one commit of a version succeeds")
	})

	t.Run("CommitChecksBundles", func(t *testing.T) {
		s := newStore(t)
		a := app(t)
		w, rel := write(t, s, a, 2, 1)
		bad := rel
		bad.Bundles = bad.Bundles[:1]
		require.Error(t, w.Commit(ctx, bad), "a written bundle missing from the record")
		bad = rel
		bad.Bundles = append([]update.BundleInfo(nil), rel.Bundles...)
		bad.Bundles[0].Size++
		require.Error(t, w.Commit(ctx, bad), "a wrong size")
		bad = rel
		bad.Version = 3
		require.Error(t, w.Commit(ctx, bad), "another version than the writer's")
		require.NoError(t, w.Abort(ctx))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Releases(cctx, app(t), "ios")
		require.True(t, errors.Is(err, context.Canceled))
	})
}

func bundleBody(v, from uint64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("bundle %d from %d;", v, from)), 10)
}
