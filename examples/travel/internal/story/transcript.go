package story

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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

// exchange prints one exchange; instance names the instance that
// answered, when there are several.
func (t *transcript) exchange(instance, method, path string, status int, code string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines++
	t.codes = append(t.codes, code)
	if instance != "" {
		fmt.Fprintf(t.w, "  %s %-6s %-46s %d %s\n", instance, method, path, status, code)
		return
	}
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
	// secret, when set, is told every secret an exchange carries.
	secret func(string)
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tr.secret != nil {
		tr.collectRequest(req)
	}
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
	if tr.secret != nil {
		tr.collectBody(body)
	}
	code := errorCode(resp, body)
	if n := resp.Header.Get(device.NoticeHeader); n != "" {
		code = strings.TrimSpace(code + " (notice: " + noticeText(n) + ")")
	}
	tr.t.exchange(resp.Header.Get(InstanceHeader), req.Method, req.URL.Path, resp.StatusCode, code)
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

// collectRequest reports the credentials and the body of a request.
func (tr *transport) collectRequest(req *http.Request) {
	if _, cred, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok {
		tr.secret(cred)
	}
	if p := req.Header.Get("DPoP"); p != "" {
		tr.secret(p)
	}
	if req.GetBody == nil {
		return
	}
	b, err := req.GetBody()
	if err != nil {
		return
	}
	defer b.Close()
	data, _ := io.ReadAll(io.LimitReader(b, 1<<20))
	tr.collectBody(data)
}

// collectBody reports the secret members of a JSON or form body.
func (tr *transport) collectBody(data []byte) {
	secretNames := []string{"access_token", "refresh_token", "auth_session", "authorization_code", "code", "nonce", "password", "pin"}
	var m map[string]any
	if json.Unmarshal(data, &m) == nil {
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, val := range x {
					if str, ok := val.(string); ok && slices.Contains(secretNames, k) && len(str) >= 4 {
						tr.secret(str)
					}
					walk(val)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(m)
		return
	}
	if form, err := url.ParseQuery(string(data)); err == nil {
		for _, k := range secretNames {
			if v := form.Get(k); len(v) >= 4 {
				tr.secret(v)
			}
		}
	}
}
