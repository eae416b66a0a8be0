package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/update"
)

func countRows(t *testing.T, s *Stores, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.updates.db.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// publishBundle commits version v of app with one full bundle holding
// body, written in pieces of piece bytes.
func publishBundle(t *testing.T, u *Updates, app string, v uint64, body []byte, piece int) {
	t.Helper()
	ctx := context.Background()
	w, err := u.Create(ctx, app, "ios", v)
	require.NoError(t, err)
	bw, err := w.Bundle(ctx, 0)
	require.NoError(t, err)
	for rest := body; len(rest) > 0; {
		k := min(piece, len(rest))
		n, err := bw.Write(rest[:k])
		require.NoError(t, err)
		require.Equal(t, k, n)
		rest = rest[k:]
	}
	require.NoError(t, bw.Close())
	require.NoError(t, w.Commit(ctx, update.Release{App: app, Platform: "ios", Version: v, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{From: 0, Size: int64(len(body)), ETag: `"e"`}}}))
}

func TestBundleChunksAndSeeks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{})
	u := s.Updates()
	u.chunkSize = 7 // many small chunks
	body := make([]byte, 100)
	_, err := rand.Read(body)
	require.NoError(t, err)
	publishBundle(t, u, "chunks", 1, body, 3)
	require.Equal(t, 15, countRows(t, s, `SELECT count(*) FROM update_chunks`), "ceil(100/7) chunks")
	require.Equal(t, 0, countRows(t, s, `SELECT count(*) FROM update_chunks WHERE octet_length(data) > 7`))

	rc, info, err := u.OpenBundle(ctx, "chunks", "ios", 1, 0)
	require.NoError(t, err)
	defer rc.Close()
	require.Equal(t, int64(100), info.Size)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, body, got)

	for _, off := range []int64{0, 1, 6, 7, 8, 13, 14, 50, 97, 99, 100} {
		pos, err := rc.Seek(off, io.SeekStart)
		require.NoError(t, err)
		require.Equal(t, off, pos)
		rest, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, body[off:], rest, "from offset %d", off)
	}
	pos, err := rc.Seek(-10, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, int64(90), pos)
	_, err = rc.Seek(-5, io.SeekCurrent)
	require.NoError(t, err)
	buf := make([]byte, 9)
	_, err = io.ReadFull(rc, buf)
	require.NoError(t, err)
	require.Equal(t, body[85:94], buf)
	_, err = rc.Seek(-1000, io.SeekCurrent)
	require.Error(t, err)
	_, err = rc.Seek(200, io.SeekStart)
	require.NoError(t, err)
	n, err := rc.Read(buf)
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, rc.Close())
	_, err = rc.Read(buf)
	require.Error(t, err, "read after close")
}

// TestBundleStreamsInMegabyteChunks writes a bundle bigger than one chunk
// through small writes and reads it back; the rows are at most
// BundleChunkSize bytes.
func TestBundleStreamsInMegabyteChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{})
	body := make([]byte, 2*BundleChunkSize+BundleChunkSize/2)
	_, err := rand.Read(body)
	require.NoError(t, err)
	publishBundle(t, s.Updates(), "big", 1, body, 32<<10)
	require.Equal(t, 3, countRows(t, s, `SELECT count(*) FROM update_chunks`))
	require.Equal(t, 0, countRows(t, s, `SELECT count(*) FROM update_chunks WHERE octet_length(data) > $1`, BundleChunkSize))

	rc, info, err := s.Updates().OpenBundle(ctx, "big", "ios", 1, 0)
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), info.Size)
	var got bytes.Buffer
	_, err = io.Copy(&got, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(body, got.Bytes()))
}

func TestAbortRemovesStagedChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{})
	u := s.Updates()
	u.chunkSize = 4
	w, err := u.Create(ctx, "abort", "ios", 1)
	require.NoError(t, err)
	bw, err := w.Bundle(ctx, 0)
	require.NoError(t, err)
	_, err = bw.Write([]byte("0123456789"))
	require.NoError(t, err)
	require.Equal(t, 2, countRows(t, s, `SELECT count(*) FROM update_chunks`), "full chunks are written as they fill")
	require.NoError(t, w.Abort(ctx))
	require.Equal(t, 0, countRows(t, s, `SELECT count(*) FROM update_chunks`))
	require.Equal(t, 0, countRows(t, s, `SELECT count(*) FROM update_uploads`))
	_, err = bw.Write([]byte("more"))
	require.Error(t, err, "a bundle of an aborted release takes no more bytes")
	require.Error(t, bw.Close(), "the unflushed tail cannot be written any more")
	require.Error(t, w.Commit(ctx, update.Release{App: "abort", Platform: "ios", Version: 1, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{Size: 10, ETag: `"e"`}}}))
	require.NoError(t, w.Abort(ctx), "a second Abort is harmless")
	_, _, err = u.OpenBundle(ctx, "abort", "ios", 1, 0)
	require.ErrorIs(t, err, update.ErrNotFound)
}

func TestDeleteAbandonedUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{})
	u := s.Updates()
	publishBundle(t, u, "kept", 1, []byte("committed"), 4)
	w, err := u.Create(ctx, "crashed", "ios", 1)
	require.NoError(t, err)
	bw, err := w.Bundle(ctx, 0)
	require.NoError(t, err)
	_, err = bw.Write(bytes.Repeat([]byte("x"), 3*BundleChunkSize/2))
	require.NoError(t, err)
	// The publisher "crashes": no Close, no Abort.
	n, err := u.DeleteAbandoned(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "recent uploads are left alone")
	n, err = u.DeleteAbandoned(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, 1, countRows(t, s, `SELECT count(*) FROM update_uploads`), "the committed upload stays")
	rc, _, err := u.OpenBundle(ctx, "kept", "ios", 1, 0)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, "committed", string(got))
	require.Error(t, bw.Close(), "the tail has no upload to go to")
	err = w.Commit(ctx, update.Release{App: "crashed", Platform: "ios", Version: 1, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{Size: 3 * BundleChunkSize / 2, ETag: `"e"`}}})
	require.Error(t, err, "a removed upload cannot be committed")
	rels, err := u.Releases(ctx, "crashed", "ios")
	require.NoError(t, err)
	require.Empty(t, rels)
}

// TestConcurrentCommitsOfDifferentVersions: commits of v2 and v3 racing
// after v1 both may succeed only in increasing order; the channel never
// goes back.
func TestConcurrentCommitsOfDifferentVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStores(t, Config{})
	u := s.Updates()
	for round := range 5 {
		app := "race" + string(rune('a'+round))
		type staged struct {
			w   update.ReleaseWriter
			rel update.Release
		}
		var ws []staged
		for v := uint64(1); v <= 4; v++ {
			w, err := u.Create(ctx, app, "ios", v)
			require.NoError(t, err)
			bw, err := w.Bundle(ctx, 0)
			require.NoError(t, err)
			require.NoError(t, bw.Close())
			ws = append(ws, staged{w, update.Release{App: app, Platform: "ios", Version: v, Manifest: []byte("{}"),
				Bundles: []update.BundleInfo{{Size: 0, ETag: `"e"`}}}})
		}
		var wg sync.WaitGroup
		errs := make([]error, len(ws))
		for i := range ws {
			wg.Go(func() { errs[i] = ws[i].w.Commit(ctx, ws[i].rel) })
		}
		wg.Wait()
		rels, err := u.Releases(ctx, app, "ios")
		require.NoError(t, err)
		require.NotEmpty(t, rels)
		for i := 1; i < len(rels); i++ {
			require.Less(t, rels[i-1].Version, rels[i].Version)
		}
		committed := 0
		for _, err := range errs {
			if err == nil {
				committed++
			} else {
				require.ErrorIs(t, err, update.ErrConflict)
			}
		}
		require.Equal(t, len(rels), committed)
		require.Equal(t, uint64(4), rels[len(rels)-1].Version, "the highest version always wins")
	}
}

func TestUpdateArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newTestStores(t, Config{}).Updates()
	for _, c := range []struct {
		app, platform string
		version       uint64
	}{{"", "ios", 1}, {".hidden", "ios", 1}, {"app", "IOS", 1}, {"app", "ios", 0}, {"app", "ios", maxVersion + 1}} {
		_, err := u.Create(ctx, c.app, c.platform, c.version)
		require.ErrorIs(t, err, update.ErrMalformed, "%+v", c)
	}
	_, err := u.Releases(ctx, "bad app", "ios")
	require.ErrorIs(t, err, update.ErrMalformed)
	w, err := u.Create(ctx, "app", "ios", 3)
	require.NoError(t, err)
	_, err = w.Bundle(ctx, 3)
	require.ErrorIs(t, err, update.ErrMalformed, "a bundle comes from an earlier version")
	_, err = w.Bundle(ctx, 0)
	require.NoError(t, err)
	_, err = w.Bundle(ctx, 0)
	require.Error(t, err, "twice")
	require.Error(t, w.Commit(ctx, update.Release{App: "app", Platform: "ios", Version: 3, Manifest: []byte("{}"),
		Bundles: []update.BundleInfo{{Size: 0, ETag: `"e"`}}}), "a bundle writer still open")
	require.NoError(t, w.Abort(ctx))
}
