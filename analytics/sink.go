package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
)

// Sink exports recorded events, for example to a file, a log pipeline or a
// data warehouse. The recorder calls Export from one goroutine of its own,
// one batch at a time, in the order events were aggregated.
type Sink interface {
	// Export writes b. It may keep b. An error is counted in
	// [Stats.SinkErrors] and logged; the batch is not retried. It should
	// return when ctx ends (the recorder is closing and gave up waiting).
	Export(ctx context.Context, b *Batch) error
}

// Batch is a group of recorded events. Device ids in it are pseudonyms and
// every label has been scrubbed.
type Batch struct {
	Calls    []Call
	Security []Security
}

// JSONLines is a [Sink] that writes one JSON object per line:
//
//	{"type":"call","time":"2026-05-01T10:00:00Z","app":"travel",...,"route":"GET /trips","method":"GET","status":200,"duration_ns":1200000,"bytes_in":0,"bytes_out":312}
//	{"type":"security","time":"2026-05-01T10:00:01Z","app":"travel",...,"kind":"challenge_failed","name":"password","reason":"wrong_password"}
//
// Calls of a batch come before its security outcomes. Each batch is one
// Write to the underlying writer, so a file opened with O_APPEND gets whole
// lines. It is safe for concurrent use.
type JSONLines struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

var _ Sink = (*JSONLines)(nil)

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

type callLine struct {
	Type string `json:"type"`
	Call
}

type securityLine struct {
	Type string `json:"type"`
	Security
}

// Export writes b's events as JSON lines.
func (j *JSONLines) Export(_ context.Context, b *Batch) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf.Reset()
	enc := json.NewEncoder(&j.buf)
	enc.SetEscapeHTML(false)
	for i := range b.Calls {
		if err := enc.Encode(callLine{"call", b.Calls[i]}); err != nil {
			return err
		}
	}
	for i := range b.Security {
		if err := enc.Encode(securityLine{"security", b.Security[i]}); err != nil {
			return err
		}
	}
	_, err := j.w.Write(j.buf.Bytes())
	return err
}
