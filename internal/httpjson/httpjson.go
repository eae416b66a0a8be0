// Package httpjson writes JSON responses and the standards' error bodies
// for moat's HTTP handlers, and reads size-limited JSON request bodies.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/moatsec/moat/internal/strictjson"
)

// Write sends v as a JSON response with the given status. Responses are
// never cached: they carry tokens, challenges and decisions.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Error is an RFC 6749 §5.2 style error body: error, error_description,
// and any extra members (for example "auth_session" or "download_url").
type Error struct {
	Code        string
	Description string
	Extra       map[string]any
}

// MarshalJSON flattens Extra next to error and error_description.
func (e Error) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		m[k] = v
	}
	m["error"] = e.Code
	if e.Description != "" {
		m["error_description"] = e.Description
	}
	return json.Marshal(m)
}

// WriteError sends an error body with the given status.
func WriteError(w http.ResponseWriter, status int, code, description string, extra map[string]any) {
	Write(w, status, Error{Code: code, Description: description, Extra: extra})
}

// ErrBodyTooLarge reports a request body over the reader's limit.
var ErrBodyTooLarge = errors.New("request body too large")

// Read decodes a JSON request body of at most limit bytes into v. It
// refuses a content type other than application/json, unknown fields,
// trailing data, and bodies over the limit, with errors whose text is safe
// to send back to the client.
func Read(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errors.New("content type must be application/json")
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrBodyTooLarge
		}
		return errors.New("malformed JSON body: could not read it")
	}
	// encoding/json matches member names without case and lets a later
	// duplicate win; another reader of the same body (a proxy, a log
	// pipeline) would see other values.
	if err := strictjson.Check(data, strictjson.FieldNames(v)); err != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return errors.New("malformed JSON body: empty or truncated body")
		}
		return fmt.Errorf("malformed JSON body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %s", describe(err))
	}
	return nil
}

// describe returns a decoding error's text without echoing the input.
func describe(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", te.Field)
		}
		return "wrong JSON type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated body"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok && len(name) > 66 {
		msg = "json: unknown field " + name[:64] + `..."`
	}
	return msg
}
