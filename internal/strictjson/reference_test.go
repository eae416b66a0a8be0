package strictjson

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// reference is Check written over encoding/json's tokenizer: slower (it
// allocates per token) but obviously right. The fuzz target holds Check
// to it.
func reference(data []byte, names []string) error {
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	type frame struct {
		object, expectKey bool
		keys              []string
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	done := false
	valueDone := func() {
		if len(stack) == 0 {
			done = true
			return
		}
		if f := stack[len(stack)-1]; f.object {
			f.expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ErrInvalid
		}
		if done {
			return ErrTrailing
		}
		if len(stack) == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return ErrNotObject
			}
		}
		if n := len(stack); n > 0 {
			f := stack[n-1]
			if f.object && f.expectKey {
				if tok == json.Delim('}') {
					stack = stack[:n-1]
					valueDone()
					continue
				}
				k, _ := tok.(string)
				for _, seen := range f.keys {
					if strings.EqualFold(seen, k) {
						return ErrDuplicateName
					}
				}
				f.keys = append(f.keys, k)
				if n == 1 && names != nil {
					exact := false
					for _, name := range names {
						exact = exact || name == k
					}
					for _, name := range names {
						if !exact && strings.EqualFold(name, k) {
							return ErrNameCase
						}
					}
				}
				f.expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxDepth {
				return ErrTooDeep
			}
			obj := tok == json.Delim('{')
			stack = append(stack, &frame{object: obj, expectKey: obj})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	if !done {
		return ErrInvalid
	}
	return nil
}
