package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/pinning"
)

// transcript prints one line per HTTP exchange (method, path, status and
// the OAuth error code when there is one) and remembers the error codes,
// so the story can check that the protocol did what it should.
type transcript struct {
	mu    sync.Mutex
	w     io.Writer
	codes []string
	lines int
}

func (t *transcript) step(format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "\n# "+format+"\n", a...)
}

func (t *transcript) note(format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "  . "+format+"\n", a...)
}

func (t *transcript) exchange(method, path string, status int, code string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines++
	t.codes = append(t.codes, code)
	fmt.Fprintf(t.w, "  %-6s %-46s %d %s\n", method, path, status, code)
}

func (t *transcript) refused(method, target string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines++
	why := err.Error()
	if errors.Is(err, pinning.ErrPinMismatch) {
		why = "TLS verified, but no certificate on the chain has a pinned key"
	}
	fmt.Fprintf(t.w, "  %-6s %-46s refused: %s\n", method, target, why)
}

// sawCode reports whether an error code appeared since mark (an index
// into the codes seen).
func (t *transcript) sawCode(mark int, code string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.codes[mark:] {
		if c == code {
			return true
		}
	}
	return false
}

func (t *transcript) mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.codes)
}

// transport wraps a RoundTripper with the transcript.
type transport struct {
	base http.RoundTripper
	t    *transcript
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		tr.t.refused(req.Method, req.URL.String(), err)
		return nil, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return nil, rerr
	}
	code := errorCode(resp, body)
	if n := resp.Header.Get(device.NoticeHeader); n != "" {
		code = strings.TrimSpace(code + " (notice: " + noticeText(n) + ")")
	}
	tr.t.exchange(req.Method, req.URL.Path, resp.StatusCode, code)
	return resp, nil
}

// errorCode finds the OAuth error code of an answer: in the JSON body, or
// in the WWW-Authenticate challenge.
func errorCode(resp *http.Response, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	for _, ch := range client.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate")) {
		if c := ch.Params["error"]; c != "" {
			return c
		}
	}
	return ""
}

func noticeText(h string) string {
	n, err := device.ParseNotice(h)
	if err != nil {
		return "unreadable"
	}
	return n.Message
}
