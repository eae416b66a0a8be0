// Package strictjson checks JSON text for what encoding/json lets through
// but another parser would read differently: member names that match a
// field only when case is ignored, duplicate member names, invalid UTF-8,
// trailing data and deep nesting. It is used before decoding input from
// the network (DPoP proofs, request bodies) into structs.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays.
const MaxDepth = 32

// Errors, safe to show to the sender: they never echo the input.
var (
	ErrInvalid       = errors.New("invalid JSON")
	ErrNotObject     = errors.New("not a JSON object")
	ErrInvalidUTF8   = errors.New("invalid UTF-8 in JSON text")
	ErrTrailing      = errors.New("trailing data after the JSON object")
	ErrTooDeep       = errors.New("JSON nested too deeply")
	ErrDuplicateName = errors.New("duplicate member name")
	ErrNameCase      = errors.New("member name differs from a known one only in case")
	ErrName          = errors.New("member name not allowed")
)

// Check returns nil when data is exactly one JSON object, in valid UTF-8,
// nested at most MaxDepth deep, in which no object has two member names
// that are equal when case is ignored (as encoding/json compares them),
// and whose top-level member names are each either one of names or not
// equal to any of them when case is ignored. It does not allocate for
// names without escapes; the caller still decodes data with
// encoding/json, which checks the rest of the syntax.
func Check(data []byte, names []string) error {
	s := scanner{data: data, names: names, maxDepth: MaxDepth}
	return s.run()
}

// CheckEvery is Check for formats whose every member name is known to
// follow a rule: instead of comparing top-level names with a list, it
// refuses (ErrName) a document in which allowed returns false for any
// member name at any depth (after unescaping), and it refuses nesting
// deeper than maxDepth. It returns the top-level member names in order.
func CheckEvery(data []byte, maxDepth int, allowed func(name string) bool) ([]string, error) {
	s := scanner{data: data, allowed: allowed, maxDepth: maxDepth}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.top, nil
}

func (s *scanner) run() error {
	data := s.data
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	s.space()
	if s.pos >= len(data) {
		return ErrInvalid
	}
	if data[s.pos] != '{' {
		return ErrNotObject
	}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.pos != len(data) {
		return ErrTrailing
	}
	return nil
}

// scanner walks JSON text just enough to see every object's member names.
type scanner struct {
	data     []byte
	pos      int
	names    []string
	allowed  func(string) bool
	maxDepth int
	top      []string
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one value, checking the member names of the objects in it.
func (s *scanner) value(depth int) error {
	if s.pos >= len(s.data) {
		return ErrInvalid
	}
	switch s.data[s.pos] {
	case '{':
		if depth >= s.maxDepth {
			return ErrTooDeep
		}
		return s.object(depth)
	case '[':
		if depth >= s.maxDepth {
			return ErrTooDeep
		}
		s.pos++
		s.space()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			return nil
		}
		for {
			s.space()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			if end, err := s.next(']'); end || err != nil {
				return err
			}
		}
	case '"':
		_, _, err := s.str()
		return err
	}
	// a number or a literal: encoding/json checks its spelling
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if s.pos == start {
				return ErrInvalid
			}
			return nil
		}
		s.pos++
	}
	if s.pos == start {
		return ErrInvalid
	}
	return nil
}

func (s *scanner) object(depth int) error {
	s.pos++ // {
	var buf [16][]byte
	keys := buf[:0]
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return ErrInvalid
		}
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		key := raw
		if escaped {
			var k string
			if json.Unmarshal(s.data[s.pos-len(raw)-2:s.pos], &k) != nil {
				return ErrInvalid
			}
			key = []byte(k)
		}
		for _, seen := range keys {
			if bytes.EqualFold(seen, key) {
				return ErrDuplicateName
			}
		}
		keys = append(keys, key)
		if depth == 0 && s.names != nil {
			if err := s.checkName(key); err != nil {
				return err
			}
		}
		if s.allowed != nil {
			k := string(key)
			if !s.allowed(k) {
				return ErrName
			}
			if depth == 0 {
				s.top = append(s.top, k)
			}
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return ErrInvalid
		}
		s.pos++
		s.space()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if end, err := s.next('}'); end || err != nil {
			return err
		}
	}
}

// next reads what follows an element of an object or array: a comma
// (more to come) or closer (the end).
func (s *scanner) next(closer byte) (end bool, err error) {
	s.space()
	if s.pos >= len(s.data) {
		return false, ErrInvalid
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return false, nil
	case closer:
		s.pos++
		return true, nil
	}
	return false, ErrInvalid
}

// str skips a string and returns its raw contents (between the quotes)
// and whether it holds escapes.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	s.pos++ // "
	start := s.pos
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			s.pos += 2
		case c < 0x20:
			return nil, false, ErrInvalid
		default:
			s.pos++
		}
	}
	return nil, false, ErrInvalid
}

func (s *scanner) checkName(key []byte) error {
	for _, n := range s.names {
		if string(key) == n {
			return nil
		}
	}
	for _, n := range s.names {
		if bytes.EqualFold([]byte(n), key) {
			return ErrNameCase
		}
	}
	return nil
}

var fieldNames sync.Map // reflect.Type -> []string

// FieldNames returns the JSON member names of the struct v points to (its
// fields' json tags, or their Go names), for [Check].
func FieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	fieldNames.Store(t, names)
	return names
}
