package auth

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/moatsec/moat/internal/httpjson"
)

// Error codes answered on protected resources (RFC 6750 §3.1, RFC 9449
// §7.1 and §12, RFC 9470 §3).
const (
	CodeInvalidRequest                 = "invalid_request"
	CodeInvalidToken                   = "invalid_token"
	CodeInsufficientScope              = "insufficient_scope"
	CodeInvalidDPoPProof               = "invalid_dpop_proof"
	CodeUseDPoPNonce                   = "use_dpop_nonce"
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
	CodeTemporarilyUnavailable         = "temporarily_unavailable"
)

// ResourceError is an error answered on a protected resource: the status,
// a WWW-Authenticate challenge in the scheme the client used (DPoP or
// Bearer), and a JSON body with the same error code.
type ResourceError struct {
	// Status is the HTTP status (401, 403, 400, 503).
	Status int
	// Code is the error code; "" for a request that carried no credentials
	// at all (RFC 6750 §3.1: no error code then).
	Code        string
	Description string
	// Scope is the scope the resource needs (insufficient_scope).
	Scope []string
	// ACRValues and MaxAge ask for a step-up (insufficient_user_authentication).
	// MaxAge is sent in whole seconds when positive (quoted, as in RFC 9470's
	// example); zero sends none, so "authenticate again now" is asked for
	// with a max age of one second.
	ACRValues []string
	MaxAge    int
	// DPoPNonce, when set, is sent in the DPoP-Nonce header.
	DPoPNonce string
	// Extra members are added to the JSON body.
	Extra map[string]any
}

func (e *ResourceError) Error() string {
	if e.Description == "" {
		return "moat/auth: " + e.Code
	}
	return "moat/auth: " + e.Code + ": " + e.Description
}

// DPoPAlgs lists the proof algorithms advertised in DPoP challenges.
var DPoPAlgs = []string{"ES256", "EdDSA"}

// WriteResourceError answers r with e. The challenge scheme follows the
// request's Authorization header: DPoP for DPoP, Bearer otherwise; a
// request with no credentials gets both challenges.
func WriteResourceError(w http.ResponseWriter, r *http.Request, e *ResourceError) {
	var params []string
	add := func(k, v string) { params = append(params, k+"="+quote(v)) }
	add("realm", "moat")
	if e.Code != "" {
		add("error", e.Code)
		if e.Description != "" {
			add("error_description", e.Description)
		}
	}
	if len(e.Scope) > 0 {
		add("scope", strings.Join(e.Scope, " "))
	}
	if len(e.ACRValues) > 0 {
		add("acr_values", strings.Join(e.ACRValues, " "))
	}
	if e.MaxAge > 0 {
		add("max_age", strconv.Itoa(e.MaxAge))
	}
	scheme, _ := authScheme(r)
	h := w.Header()
	switch {
	case e.Code == "" || scheme == "":
		h.Add("WWW-Authenticate", "DPoP "+strings.Join(params, ", ")+`, algs="`+strings.Join(DPoPAlgs, " ")+`"`)
		h.Add("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	case strings.EqualFold(scheme, "DPoP"):
		h.Add("WWW-Authenticate", "DPoP "+strings.Join(params, ", ")+`, algs="`+strings.Join(DPoPAlgs, " ")+`"`)
	default:
		h.Add("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	}
	if e.DPoPNonce != "" {
		h.Set("DPoP-Nonce", e.DPoPNonce)
	}
	extra := make(map[string]any, len(e.Extra)+3)
	for k, v := range e.Extra {
		extra[k] = v
	}
	if len(e.Scope) > 0 {
		extra["scope"] = strings.Join(e.Scope, " ")
	}
	if len(e.ACRValues) > 0 {
		extra["acr_values"] = strings.Join(e.ACRValues, " ")
	}
	if e.MaxAge > 0 {
		extra["max_age"] = e.MaxAge
	}
	code := e.Code
	if code == "" {
		code = CodeInvalidToken
		if e.Description == "" {
			e = &ResourceError{Status: e.Status, Description: "authentication required"}
		}
	}
	status := e.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	httpjson.WriteError(w, status, code, e.Description, extra)
}

// authScheme splits the Authorization header into scheme and credentials.
func authScheme(r *http.Request) (scheme, credentials string) {
	v := r.Header.Get("Authorization")
	i := strings.IndexByte(v, ' ')
	if i <= 0 {
		return "", ""
	}
	return v[:i], strings.TrimLeft(v[i+1:], " ")
}

// quote returns v as an RFC 9110 quoted-string, dropping characters that
// cannot appear in one.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
