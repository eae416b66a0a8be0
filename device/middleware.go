package device

import (
	"errors"
	"net/http"

	"github.com/moatsec/moat/internal/httpjson"
)

// Middleware returns the request-path stage: it runs [Control.Check] for
// the client that extract finds in the request (the host reads it from
// what its authentication stage put in the context) and
//
//   - refuses with 403 and a JSON body {"error": "device_blocked" or
//     "app_version_blocked", "error_description", "message",
//     "download_url"} (message and download_url when set);
//   - answers 503 {"error": "temporarily_unavailable"} when the store
//     failed: it never lets a request through on an error;
//   - otherwise calls next, after setting the [NoticeHeader] response
//     header and putting the notice in the request context ([NoticeFrom])
//     when there is one to show.
//
// A request for which extract reports false is refused with 403
// device_blocked: a stack that puts this stage before authentication
// fails closed. Requests that are not subject to device control (server
// to server calls) must be routed around this stage by the host.
//
// When extract leaves Client.AcceptLanguage empty, the request's
// Accept-Language header is used. Middleware panics if extract is nil.
func (c *Control) Middleware(extract func(*http.Request) (Client, bool)) func(http.Handler) http.Handler {
	if extract == nil {
		panic("moat/device: Middleware needs an extract function")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cl, ok := extract(r)
			if !ok {
				WriteRefusal(w, newRefusal(CodeDeviceBlocked, "request identifies no device", c.deviceText(&cl), ""))
				return
			}
			if cl.AcceptLanguage == "" {
				if v := r.Header["Accept-Language"]; len(v) > 0 {
					cl.AcceptLanguage = v[0]
				}
			}
			notice, err := c.Check(r.Context(), cl)
			if err != nil {
				writeError(w, err)
				return
			}
			if notice != nil {
				w.Header().Set(NoticeHeader, notice.HeaderValue())
				r = r.WithContext(ContextWithNotice(r.Context(), notice))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WriteRefusal answers with a refusal's status and JSON body.
func WriteRefusal(w http.ResponseWriter, r *Refusal) {
	httpjson.WriteError(w, r.Status, r.Code, r.Description, r.Extra())
}

// writeError answers a Check error: a refusal as such, anything else as
// 503.
func writeError(w http.ResponseWriter, err error) {
	var r *Refusal
	if errors.As(err, &r) {
		WriteRefusal(w, r)
		return
	}
	httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "device status is unavailable; try again", nil)
}
