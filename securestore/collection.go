package securestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Collection is a named set of JSON documents with ids, in the model of
// MobileFirst's JSONStore. Declared search fields are indexed as blind
// indexes, so equality queries find documents without decrypting the
// others, and every change is tracked as dirty until marked clean, for
// apps that sync with a backend. Get one with [Store.Collection].
type Collection struct {
	s      *Store
	name   string
	blind  string
	fields []string
}

// State is a document's sync state.
type State uint8

const (
	// Clean: unchanged since the last MarkClean.
	Clean State = iota
	// Added: created since the last sync.
	Added
	// Replaced: changed since the last sync.
	Replaced
	// Removed: removed since the last sync; kept, unreadable to Get and
	// Find, until marked clean.
	Removed
)

// String returns "clean", "added", "replaced" or "removed".
func (s State) String() string {
	switch s {
	case Clean:
		return "clean"
	case Added:
		return "added"
	case Replaced:
		return "replaced"
	case Removed:
		return "removed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Document is a document and its id.
type Document struct {
	ID   string
	JSON json.RawMessage
}

// Change is a dirty document, as [Collection.Dirty] returns it.
type Change struct {
	ID    string
	State State
	// JSON is the document; for Removed, its last content.
	JSON json.RawMessage
	// rev identifies the record version, so MarkClean leaves documents
	// changed after Dirty read them dirty.
	rev [sha256.Size]byte
}

// Query selects documents by equality on search fields: a document
// matches when, for at least one element of Match, every field in it has
// the given value (AND within an element, OR across elements). An empty
// Match selects every document.
//
// Values are strings, booleans or numbers (any Go integer or float type,
// or json.Number). They are compared after normalization: strings with
// surrounding white space trimmed and in lower case, numbers by their
// float64 value. A string never equals a number.
type Query struct {
	Match []map[string]any
	// Offset skips that many matches, in ascending id order.
	Offset int
	// Limit returns at most that many documents; zero returns every match.
	Limit int
}

// Collection opens (creating if needed) the collection name with the
// given search fields: top-level member names or dotted paths into nested
// objects ("address.city"); a path that meets an array indexes each
// element. If the fields differ from those the collection had, every
// document is re-indexed before Collection returns.
func (s *Store) Collection(ctx context.Context, name string, searchFields ...string) (*Collection, error) {
	r, err := s.live(ctx)
	if err != nil {
		return nil, err
	}
	if !validKey(name) {
		return nil, fmt.Errorf("%w: collection name", ErrInvalidKey)
	}
	fields := slices.Clone(searchFields)
	slices.Sort(fields)
	fields = slices.Compact(fields)
	for _, f := range fields {
		if !validKey(f) || strings.ContainsRune(f, 0) || slices.Contains(strings.Split(f, "."), "") {
			return nil, fmt.Errorf("%w: search field %q", ErrInvalidKey, f)
		}
	}
	c := &Collection{s: s, name: name, blind: r.names.blind(name), fields: fields}
	want, _ := json.Marshal(fields)
	metaName := "c." + c.blind
	_, have, err := s.getRecord(ctx, metaName)
	switch {
	case err == nil && bytes.Equal(have, want):
		return c, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	case err == nil:
		if err := c.reindex(ctx); err != nil {
			return nil, err
		}
	}
	err = s.write(ctx, func(*ring) (string, error) { return metaName, nil }, func(r *ring, n string) error {
		return s.putRecord(ctx, r, n, nil, want)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Name returns the collection's name.
func (c *Collection) Name() string { return c.name }

// SearchFields returns the collection's search fields, sorted.
func (c *Collection) SearchFields() []string { return slices.Clone(c.fields) }

func (c *Collection) prefix() string { return "d." + c.blind + "." }

func (c *Collection) docName(r *ring, id string) (string, error) {
	if !validKey(id) {
		return "", fmt.Errorf("%w: document id", ErrInvalidKey)
	}
	return r.names.seal(c.prefix(), kindDoc, c.name, id), nil
}

// docMeta is the clear section of a document record: its state and its
// blind-index tokens.
func docMeta(state State, tokens [][tokenSize]byte) []byte {
	out := make([]byte, 1, 1+len(tokens)*tokenSize)
	out[0] = byte(state)
	for _, t := range tokens {
		out = append(out, t[:]...)
	}
	return out
}

func parseDocMeta(clear []byte) (State, []byte, error) {
	if len(clear) < 1 || (len(clear)-1)%tokenSize != 0 || clear[0] > byte(Removed) {
		return 0, nil, fmt.Errorf("%w: document metadata", ErrCorruptRecord)
	}
	return State(clear[0]), clear[1:], nil
}

// docRecord is a decrypted document record.
type docRecord struct {
	state State
	toks  []byte
	plain []byte
}

// readDoc reads and decrypts the document record at name (ErrNotFound if
// there is none); decodeDoc does the same for a record already read.
func (c *Collection) readDoc(ctx context.Context, name string) (docRecord, error) {
	clear, plain, err := c.s.getRecord(ctx, name)
	if err != nil {
		return docRecord{}, err
	}
	return newDocRecord(clear, plain)
}

func (c *Collection) decodeDoc(raw []byte, name string) (docRecord, error) {
	clear, plain, err := c.s.openRecord(raw, name)
	if err != nil {
		return docRecord{}, err
	}
	return newDocRecord(clear, plain)
}

func newDocRecord(clear, plain []byte) (docRecord, error) {
	state, toks, err := parseDocMeta(clear)
	return docRecord{state: state, toks: toks, plain: plain}, err
}

// tokens computes the blind-index tokens of doc.
func (c *Collection) tokens(r *ring, doc json.RawMessage) ([][tokenSize]byte, error) {
	var root any
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	if err := d.Decode(&root); err != nil {
		return nil, ErrInvalidDocument
	}
	if _, ok := root.(map[string]any); !ok || d.More() {
		return nil, ErrInvalidDocument
	}
	var out [][tokenSize]byte
	for _, f := range c.fields {
		for _, v := range lookup(root, strings.Split(f, ".")) {
			if n, ok := normalize(v); ok {
				out = append(out, r.names.token(c.name, f, n))
			}
		}
	}
	slices.SortFunc(out, func(a, b [tokenSize]byte) int { return bytes.Compare(a[:], b[:]) })
	out = slices.Compact(out)
	if len(out)*tokenSize+1 > maxClear {
		return nil, fmt.Errorf("%w: too many indexed values", ErrTooLarge)
	}
	return out, nil
}

// lookup returns the values at path, descending into arrays.
func lookup(v any, path []string) []any {
	if arr, ok := v.([]any); ok {
		var out []any
		for _, e := range arr {
			out = append(out, lookup(e, path)...)
		}
		return out
	}
	if len(path) == 0 {
		return []any{v}
	}
	if obj, ok := v.(map[string]any); ok {
		if next, ok := obj[path[0]]; ok {
			return lookup(next, path[1:])
		}
	}
	return nil
}

// normalize returns the indexed form of a scalar, or false for values
// that are not indexed (null, objects).
func normalize(v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return []byte("s" + strings.ToLower(strings.TrimSpace(x))), true
	case bool:
		return []byte("b" + strconv.FormatBool(x)), true
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, false
		}
		return normFloat(f), true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return normFloat(float64(rv.Int())), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return normFloat(float64(rv.Uint())), true
	case reflect.Float32, reflect.Float64:
		return normFloat(rv.Float()), true
	}
	return nil, false
}

func normFloat(f float64) []byte {
	if f == 0 {
		f = 0 // -0 equals 0
	}
	return []byte("n" + strconv.FormatFloat(f, 'g', -1, 64))
}

// NewID returns a random document id: 26 characters of base32, 128 bits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return nameEncoding.EncodeToString(b[:])
}

// Add stores doc (a JSON object) under a new random id, marked Added, and
// returns the id.
func (c *Collection) Add(ctx context.Context, doc json.RawMessage) (string, error) {
	id := NewID()
	return id, c.Put(ctx, id, doc)
}

// Put stores doc (a JSON object) under id, replacing any document there.
// A new document is marked Added; a replaced one Replaced (or stays Added
// if it was never synced).
func (c *Collection) Put(ctx context.Context, id string, doc json.RawMessage) error {
	if len(doc) > MaxValueSize {
		return ErrTooLarge
	}
	return c.s.write(ctx, func(r *ring) (string, error) { return c.docName(r, id) }, func(r *ring, name string) error {
		tokens, err := c.tokens(r, doc)
		if err != nil {
			return err
		}
		state := Added
		old, err := c.readDoc(ctx, name)
		switch {
		case err == nil && old.state != Added:
			state = Replaced
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		return c.s.putRecord(ctx, r, name, docMeta(state, tokens), doc)
	})
}

// Get returns the document stored under id, or ErrNotFound (also for a
// removed document waiting to be marked clean).
func (c *Collection) Get(ctx context.Context, id string) (json.RawMessage, error) {
	r, err := c.s.live(ctx)
	if err != nil {
		return nil, err
	}
	name, err := c.docName(r, id)
	if err != nil {
		return nil, err
	}
	d, err := c.readDoc(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.state == Removed {
		return nil, ErrNotFound
	}
	return d.plain, nil
}

// Remove removes the document under id. A document never synced (Added)
// is deleted at once; any other is kept as Removed until marked clean.
// Removing a missing document is not an error.
func (c *Collection) Remove(ctx context.Context, id string) error {
	return c.s.write(ctx, func(r *ring) (string, error) { return c.docName(r, id) }, func(r *ring, name string) error {
		d, err := c.readDoc(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		switch d.state {
		case Removed:
			return nil
		case Added:
			return c.s.b.Delete(ctx, name)
		}
		return c.s.putRecord(ctx, r, name, docMeta(Removed, nil), d.plain)
	})
}

// record is one document record read during a scan.
type record struct {
	name  string
	raw   []byte
	state State
	toks  []byte
}

// scan reads the clear sections of every document record; keep decides,
// from state and tokens alone, which records to return.
func (c *Collection) scan(ctx context.Context, keep func(State, []byte) bool) ([]record, error) {
	names, err := c.s.b.List(ctx, c.prefix())
	if err != nil {
		return nil, err
	}
	var out []record
	for _, n := range names {
		raw, err := c.s.b.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		e, err := parseEnvelope(raw)
		if err != nil {
			return nil, err
		}
		state, toks, err := parseDocMeta(e.clear)
		if err != nil {
			return nil, err
		}
		if keep(state, toks) {
			out = append(out, record{name: n, raw: raw, state: state, toks: toks})
		}
	}
	return out, nil
}

// Find returns the documents that match q, in ascending id order. It
// reads every record of the collection but decrypts only the matches.
func (c *Collection) Find(ctx context.Context, q Query) ([]Document, error) {
	r, err := c.s.live(ctx)
	if err != nil {
		return nil, err
	}
	if q.Offset < 0 || q.Limit < 0 {
		return nil, fmt.Errorf("%w: negative offset or limit", ErrInvalidQuery)
	}
	parts := make([][][tokenSize]byte, 0, len(q.Match))
	for _, m := range q.Match {
		var part [][tokenSize]byte
		for f, v := range m {
			if !slices.Contains(c.fields, f) {
				return nil, fmt.Errorf("%w: %q is not a search field", ErrInvalidQuery, f)
			}
			n, ok := normalize(v)
			if !ok {
				return nil, fmt.Errorf("%w: value of %q is not a string, number or boolean", ErrInvalidQuery, f)
			}
			part = append(part, r.names.token(c.name, f, n))
		}
		parts = append(parts, part)
	}
	recs, err := c.scan(ctx, func(state State, toks []byte) bool {
		return state != Removed && matches(parts, toks)
	})
	if err != nil {
		return nil, err
	}
	return decrypt(c, r, recs, q.Offset, q.Limit, func(_ record, d Document) Document { return d })
}

// matches reports whether sorted tokens satisfy any part (all of them
// when there are no parts).
func matches(parts [][][tokenSize]byte, toks []byte) bool {
	if len(parts) == 0 {
		return true
	}
	n := len(toks) / tokenSize
	has := func(t [tokenSize]byte) bool {
		i := sort.Search(n, func(i int) bool { return bytes.Compare(toks[i*tokenSize:(i+1)*tokenSize], t[:]) >= 0 })
		return i < n && bytes.Equal(toks[i*tokenSize:(i+1)*tokenSize], t[:])
	}
	for _, part := range parts {
		all := true
		for _, t := range part {
			if !has(t) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// decrypt orders records by id, applies offset and limit, and decrypts
// what remains.
func decrypt[T any](c *Collection, r *ring, recs []record, offset, limit int, mk func(record, Document) T) ([]T, error) {
	type idRec struct {
		id  string
		rec record
	}
	ids := make([]idRec, 0, len(recs))
	for _, rec := range recs {
		id, err := r.names.open(kindDoc, c.name, strings.TrimPrefix(rec.name, c.prefix()))
		if err != nil {
			return nil, err
		}
		ids = append(ids, idRec{id, rec})
	}
	slices.SortFunc(ids, func(a, b idRec) int { return strings.Compare(a.id, b.id) })
	if offset >= len(ids) {
		return nil, nil
	}
	ids = ids[offset:]
	if limit > 0 && limit < len(ids) {
		ids = ids[:limit]
	}
	out := make([]T, 0, len(ids))
	for _, ir := range ids {
		_, plain, err := c.s.openRecord(ir.rec.raw, ir.rec.name)
		if err != nil {
			return nil, err
		}
		out = append(out, mk(ir.rec, Document{ID: ir.id, JSON: plain}))
	}
	return out, nil
}

// Dirty returns the documents added, replaced or removed since they were
// last marked clean, in ascending id order.
func (c *Collection) Dirty(ctx context.Context) ([]Change, error) {
	r, err := c.s.live(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := c.scan(ctx, func(state State, _ []byte) bool { return state != Clean })
	if err != nil {
		return nil, err
	}
	return decrypt(c, r, recs, 0, 0, func(rec record, d Document) Change {
		return Change{ID: d.ID, State: rec.state, JSON: d.JSON, rev: sha256.Sum256(rec.raw)}
	})
}

// MarkClean records that changes reached the backend the app syncs with:
// removed documents are deleted, the others become Clean. A document
// changed again after Dirty returned it stays dirty.
func (c *Collection) MarkClean(ctx context.Context, changes ...Change) error {
	for _, ch := range changes {
		err := c.s.write(ctx, func(r *ring) (string, error) { return c.docName(r, ch.ID) }, func(r *ring, name string) error {
			raw, err := c.s.b.Get(ctx, name)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if sha256.Sum256(raw) != ch.rev {
				return nil // changed since Dirty: still dirty
			}
			d, err := c.decodeDoc(raw, name)
			if err != nil {
				return err
			}
			switch d.state {
			case Clean:
				return nil
			case Removed:
				return c.s.b.Delete(ctx, name)
			}
			meta := append([]byte{byte(Clean)}, d.toks...)
			return c.s.putRecord(ctx, r, name, meta, d.plain)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// reindex recomputes every document's tokens for the collection's fields.
func (c *Collection) reindex(ctx context.Context) error {
	names, err := c.s.b.List(ctx, c.prefix())
	if err != nil {
		return err
	}
	for _, n := range names {
		err := c.s.write(ctx, func(*ring) (string, error) { return n, nil }, func(r *ring, name string) error {
			d, err := c.readDoc(ctx, name)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var tokens [][tokenSize]byte
			if d.state != Removed {
				if tokens, err = c.tokens(r, d.plain); err != nil {
					return err
				}
			}
			return c.s.putRecord(ctx, r, name, docMeta(d.state, tokens), d.plain)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
