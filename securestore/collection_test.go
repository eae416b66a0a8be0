package securestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

func ids(docs []securestore.Document) []string {
	out := []string{}
	for _, d := range docs {
		out = append(out, d.ID)
	}
	return out
}

func TestCollectionQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	c, err := s.Collection(ctx, "people", "name", "age", "address.city", "tags", "vip")
	require.NoError(t, err)
	docs := map[string]string{
		"1": `{"name":"Ada Lovelace","age":36,"address":{"city":"London"},"tags":["math","poetry"],"vip":true}`,
		"2": `{"name":"alan turing","age":41,"address":{"city":"London"},"tags":["math"]}`,
		"3": `{"name":" Grace Hopper ","age":85.0,"address":{"city":"Arlington"},"tags":["navy","cobol"],"vip":true}`,
		"4": `{"name":"Ada Lovelace","age":"36","address":{"city":"Paris"}}`,
		"5": `{"unrelated":true}`,
	}
	for id, d := range docs {
		require.NoError(t, c.Put(ctx, id, json.RawMessage(d)))
	}
	for _, tc := range []struct {
		name string
		q    securestore.Query
		want []string
	}{
		{"all", securestore.Query{}, []string{"1", "2", "3", "4", "5"}},
		{"string, case and space folded", securestore.Query{Match: []map[string]any{{"name": "ada lovelace"}}}, []string{"1", "4"}},
		{"trimmed", securestore.Query{Match: []map[string]any{{"name": "GRACE HOPPER"}}}, []string{"3"}},
		{"number", securestore.Query{Match: []map[string]any{{"age": 36}}}, []string{"1"}},
		{"number as float", securestore.Query{Match: []map[string]any{{"age": 85}}}, []string{"3"}},
		{"json number", securestore.Query{Match: []map[string]any{{"age": json.Number("41.0")}}}, []string{"2"}},
		{"string is not a number", securestore.Query{Match: []map[string]any{{"age": "36"}}}, []string{"4"}},
		{"bool", securestore.Query{Match: []map[string]any{{"vip": true}}}, []string{"1", "3"}},
		{"nested path", securestore.Query{Match: []map[string]any{{"address.city": "london"}}}, []string{"1", "2"}},
		{"array element", securestore.Query{Match: []map[string]any{{"tags": "math"}}}, []string{"1", "2"}},
		{"AND within a part", securestore.Query{Match: []map[string]any{{"tags": "math", "vip": true}}}, []string{"1"}},
		{"OR across parts", securestore.Query{Match: []map[string]any{{"address.city": "paris"}, {"tags": "navy"}}}, []string{"3", "4"}},
		{"no match", securestore.Query{Match: []map[string]any{{"name": "nobody"}}}, []string{}},
		{"limit", securestore.Query{Limit: 2}, []string{"1", "2"}},
		{"offset", securestore.Query{Offset: 3}, []string{"4", "5"}},
		{"offset and limit", securestore.Query{Offset: 1, Limit: 1, Match: []map[string]any{{"address.city": "london"}}}, []string{"2"}},
		{"offset past the end", securestore.Query{Offset: 10}, []string{}},
	} {
		got, err := c.Find(ctx, tc.q)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, ids(got), tc.name)
	}
	got, err := c.Find(ctx, securestore.Query{Match: []map[string]any{{"tags": "poetry"}}})
	require.NoError(t, err)
	require.JSONEq(t, docs["1"], string(got[0].JSON))

	for name, q := range map[string]securestore.Query{
		"not a search field": {Match: []map[string]any{{"unrelated": true}}},
		"object value":       {Match: []map[string]any{{"name": map[string]any{}}}},
		"nil value":          {Match: []map[string]any{{"name": nil}}},
		"negative limit":     {Limit: -1},
		"negative offset":    {Offset: -1},
	} {
		_, err := c.Find(ctx, q)
		require.ErrorIs(t, err, securestore.ErrInvalidQuery, name)
	}
	for _, bad := range []string{`[1,2]`, `"x"`, `{"a":1} {"b":2}`, `{"a":`, ``, `null`} {
		require.ErrorIs(t, c.Put(ctx, "bad", json.RawMessage(bad)), securestore.ErrInvalidDocument, bad)
	}
	_, err = c.Get(ctx, "bad")
	require.ErrorIs(t, err, securestore.ErrNotFound, "a refused document is not stored")

	// The backend holds neither ids, nor collection name, nor values.
	names, err := b.List(ctx, "")
	require.NoError(t, err)
	for _, n := range names {
		require.NotContains(t, n, "people")
		raw, err := b.Get(ctx, n)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "London")
		require.NotContains(t, string(raw), "london")
	}
}

func TestCollectionsAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, securestore.NewMemoryBackend(), securestore.Config{})
	a, err := s.Collection(ctx, "a", "x")
	require.NoError(t, err)
	b, err := s.Collection(ctx, "b", "x")
	require.NoError(t, err)
	require.NoError(t, a.Put(ctx, "1", json.RawMessage(`{"x":"same"}`)))
	require.NoError(t, b.Put(ctx, "1", json.RawMessage(`{"x":"same","in":"b"}`)))
	require.NoError(t, s.Put(ctx, "1", []byte("kv")))
	got, err := a.Get(ctx, "1")
	require.NoError(t, err)
	require.JSONEq(t, `{"x":"same"}`, string(got))
	found, err := b.Find(ctx, securestore.Query{Match: []map[string]any{{"x": "same"}}})
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.JSONEq(t, `{"x":"same","in":"b"}`, string(found[0].JSON))
	keys, err := s.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, keys, "documents are not key-value records")
}

func TestCollectionDirtyTracking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, securestore.NewMemoryBackend(), securestore.Config{})
	c, err := s.Collection(ctx, "orders", "status")
	require.NoError(t, err)

	id, err := c.Add(ctx, json.RawMessage(`{"status":"new"}`))
	require.NoError(t, err)
	require.Len(t, id, 26)
	require.NoError(t, c.Put(ctx, "synced", json.RawMessage(`{"status":"old"}`)))
	require.NoError(t, c.Put(ctx, "gone", json.RawMessage(`{"status":"old"}`)))

	dirty, err := c.Dirty(ctx)
	require.NoError(t, err)
	require.Len(t, dirty, 3)
	for _, ch := range dirty {
		require.Equal(t, securestore.Added, ch.State)
	}
	require.NoError(t, c.MarkClean(ctx, dirty...))
	dirty, err = c.Dirty(ctx)
	require.NoError(t, err)
	require.Empty(t, dirty)

	require.NoError(t, c.Put(ctx, "synced", json.RawMessage(`{"status":"paid"}`)))
	require.NoError(t, c.Remove(ctx, "gone"))
	require.NoError(t, c.Remove(ctx, "gone"), "removing twice is fine")
	require.NoError(t, c.Remove(ctx, "never-existed"))
	fresh, err := c.Add(ctx, json.RawMessage(`{"status":"new"}`))
	require.NoError(t, err)
	require.NoError(t, c.Put(ctx, fresh, json.RawMessage(`{"status":"newer"}`)))

	dirty, err = c.Dirty(ctx)
	require.NoError(t, err)
	states := map[string]securestore.State{}
	for _, ch := range dirty {
		states[ch.ID] = ch.State
	}
	require.Equal(t, map[string]securestore.State{"synced": securestore.Replaced, "gone": securestore.Removed, fresh: securestore.Added}, states)
	for _, ch := range dirty {
		if ch.ID == "gone" {
			require.JSONEq(t, `{"status":"old"}`, string(ch.JSON), "a removed document keeps its last content for the sync")
		}
	}
	_, err = c.Get(ctx, "gone")
	require.ErrorIs(t, err, securestore.ErrNotFound)
	found, err := c.Find(ctx, securestore.Query{Match: []map[string]any{{"status": "old"}}})
	require.NoError(t, err)
	require.Empty(t, found, "removed documents are not found")

	// A document changed after Dirty read it stays dirty.
	require.NoError(t, c.Put(ctx, "synced", json.RawMessage(`{"status":"refunded"}`)))
	require.NoError(t, c.MarkClean(ctx, dirty...))
	dirty, err = c.Dirty(ctx)
	require.NoError(t, err)
	require.Len(t, dirty, 1)
	require.Equal(t, "synced", dirty[0].ID)
	require.Equal(t, securestore.Replaced, dirty[0].State)
	require.JSONEq(t, `{"status":"refunded"}`, string(dirty[0].JSON))

	// A removed-then-cleaned document is gone for good; an added one
	// removed before any sync never shows as dirty.
	all, err := c.Find(ctx, securestore.Query{})
	require.NoError(t, err)
	want := []string{id, fresh, "synced"}
	slices.Sort(want)
	require.Equal(t, want, ids(all), "Find returns ids in ascending order")
	temp, err := c.Add(ctx, json.RawMessage(`{}`))
	require.NoError(t, err)
	require.NoError(t, c.Remove(ctx, temp))
	require.NoError(t, c.MarkClean(ctx, dirty...))
	dirty, err = c.Dirty(ctx)
	require.NoError(t, err)
	require.Empty(t, dirty)
	require.Equal(t, "removed", securestore.Removed.String())
}

func TestCollectionReindexOnNewFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := securestore.NewMemoryBackend()
	s := newStore(t, b, securestore.Config{})
	c, err := s.Collection(ctx, "items", "color")
	require.NoError(t, err)
	for i := range 6 {
		require.NoError(t, c.Put(ctx, fmt.Sprint(i), json.RawMessage(fmt.Sprintf(`{"color":"c%d","size":%d}`, i%2, i%3))))
	}
	_, err = c.Find(ctx, securestore.Query{Match: []map[string]any{{"size": 1}}})
	require.ErrorIs(t, err, securestore.ErrInvalidQuery)

	s2, err := securestore.Open(ctx, b, securestore.Passcode([]byte("correct horse")))
	require.NoError(t, err)
	c2, err := s2.Collection(ctx, "items", "size", "color")
	require.NoError(t, err)
	require.Equal(t, []string{"color", "size"}, c2.SearchFields())
	got, err := c2.Find(ctx, securestore.Query{Match: []map[string]any{{"size": 1, "color": "c1"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, ids(got))

	_, err = s2.Collection(ctx, "items", "a..b")
	require.ErrorIs(t, err, securestore.ErrInvalidKey)
	_, err = s2.Collection(ctx, "")
	require.ErrorIs(t, err, securestore.ErrInvalidKey)
}
