package device

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/moatsec/moat/internal/httpjson"
)

// Operation is what an operator API call does, for the [Authorizer].
type Operation string

// Operations.
const (
	// ReadDevices lists and reads devices and the audit trail.
	ReadDevices Operation = "devices.read"
	// WriteDevices changes statuses and unregisters devices.
	WriteDevices Operation = "devices.write"
	// ReadPolicies reads version policies.
	ReadPolicies Operation = "policies.read"
	// WritePolicies sets and deletes version policies.
	WritePolicies Operation = "policies.write"
)

// Authorizer decides who may call the operator API. The host application
// supplies it: moat has no built-in administrator accounts.
type Authorizer interface {
	// Authorize returns the operator's name, which the audit trail
	// records as the actor of a change, or an error: ErrUnauthorized (or
	// an error wrapping it) is answered 401, ErrForbidden 403, and any
	// other error 503. It runs before the request body is read.
	Authorize(r *http.Request, op Operation) (operator string, err error)
}

// AuthorizerFunc adapts a function to [Authorizer].
type AuthorizerFunc func(r *http.Request, op Operation) (string, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r *http.Request, op Operation) (string, error) { return f(r, op) }

var _ Authorizer = AuthorizerFunc(nil)

// OperatorConfig configures [NewOperatorHandler].
type OperatorConfig struct {
	// Authorizer authorizes every call. Required.
	Authorizer Authorizer
	// Logger receives store failures. Nil means slog.Default().
	Logger *slog.Logger
}

// maxOperatorBody bounds operator request bodies.
const maxOperatorBody = 64 << 10

// NewOperatorHandler returns the operator API, a JSON http.Handler over
// c. Mount it under a prefix of your choice, behind TLS:
//
//	mux.Handle("/admin/device/", http.StripPrefix("/admin/device", h))
//
// Routes (ids are path segments, percent-encoded as needed):
//
//	GET    /devices?user=&name=&status=&app=&after=&limit=  search   -> {"devices": [...], "next": "..."}
//	GET    /devices/{id}                                     device   -> Device
//	PUT    /devices/{id}/status            {"status", "reason"}      -> AuditEntry
//	PUT    /devices/{id}/apps/{app}/status {"status", "reason"}      -> AuditEntry
//	POST   /devices/{id}/unregister        {"reason"}                -> AuditEntry
//	GET    /devices/{id}/audit?before=&limit=                        -> {"entries": [...], "next": seq}
//	GET    /audit?device=&app=&before=&limit=                        -> {"entries": [...], "next": seq}
//	GET    /policies                                                 -> {"policies": [...]}
//	GET    /policies/{app}/{platform}                                -> Policy
//	PUT    /policies/{app}/{platform}      PolicyRequest             -> AuditEntry
//	DELETE /policies/{app}/{platform}?reason=                        -> AuditEntry, or 204 when there was none
//
// Every call is authorized first: 401 (with WWW-Authenticate: Bearer) or
// 403 before anything is read or changed. Errors are JSON
// {"error", "error_description"}: 400 invalid_request, 404 not_found,
// 409 device_blocked (unregistering a blocked device), 503
// temporarily_unavailable. A change that was stored but could not be
// propagated to other instances answers 200 with a "warning" member.
//
// NewOperatorHandler refuses to build a handler without an Authorizer.
func NewOperatorHandler(c *Control, cfg OperatorConfig) (http.Handler, error) {
	if c == nil {
		return nil, errors.New("moat/device: operator handler needs a Control")
	}
	if f, ok := cfg.Authorizer.(AuthorizerFunc); cfg.Authorizer == nil || (ok && f == nil) {
		return nil, errors.New("moat/device: operator handler needs an Authorizer (moat has no built-in admin accounts)")
	}
	h := &operatorHandler{c: c, authz: cfg.Authorizer, log: cfg.Logger, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.handle("GET /devices", ReadDevices, h.search)
	h.handle("GET /devices/{id}", ReadDevices, h.device)
	h.handle("PUT /devices/{id}/status", WriteDevices, h.setStatus)
	h.handle("PUT /devices/{id}/apps/{app}/status", WriteDevices, h.setStatus)
	h.handle("POST /devices/{id}/unregister", WriteDevices, h.unregister)
	h.handle("GET /devices/{id}/audit", ReadDevices, h.audit)
	h.handle("GET /audit", ReadDevices, h.audit)
	h.handle("GET /policies", ReadPolicies, h.policies)
	h.handle("GET /policies/{app}/{platform}", ReadPolicies, h.policy)
	h.handle("PUT /policies/{app}/{platform}", WritePolicies, h.setPolicy)
	h.handle("DELETE /policies/{app}/{platform}", WritePolicies, h.deletePolicy)
	return h, nil
}

type operatorHandler struct {
	c     *Control
	authz Authorizer
	log   *slog.Logger
	mux   *http.ServeMux
}

func (h *operatorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// handle registers fn behind authorization for op.
func (h *operatorHandler) handle(pattern string, op Operation, fn func(w http.ResponseWriter, r *http.Request, operator string)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		operator, err := h.authz.Authorize(r, op)
		switch {
		case errors.Is(err, ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", `Bearer realm="moat-device"`)
			httpjson.WriteError(w, http.StatusUnauthorized, "invalid_token", "operator credentials required", nil)
			return
		case errors.Is(err, ErrForbidden):
			httpjson.WriteError(w, http.StatusForbidden, "insufficient_scope", "operator may not "+string(op), nil)
			return
		case err != nil:
			h.log.ErrorContext(r.Context(), "moat/device: operator authorization failed", "error", err)
			httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "authorization unavailable", nil)
			return
		case checkID("operator", operator) != nil:
			h.log.ErrorContext(r.Context(), "moat/device: the Authorizer returned no usable operator name")
			httpjson.WriteError(w, http.StatusInternalServerError, "server_error", "authorizer named no operator", nil)
			return
		}
		fn(w, r, operator)
	})
}

// fail answers an error from Control.
func (h *operatorHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, "not_found", "no such record", nil)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrInvalidPolicy):
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error(), nil)
	case errors.Is(err, ErrBlocked):
		httpjson.WriteError(w, http.StatusConflict, "device_blocked", err.Error(), nil)
	case errors.Is(err, ErrFull):
		httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error(), nil)
	default:
		h.log.ErrorContext(r.Context(), "moat/device: operator API", "error", err)
		httpjson.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "store unavailable; try again", nil)
	}
}

func badRequest(w http.ResponseWriter, description string) {
	httpjson.WriteError(w, http.StatusBadRequest, "invalid_request", description, nil)
}

// changed answers a change: the audit entry, with a warning when it did
// not reach other instances.
func (h *operatorHandler) changed(w http.ResponseWriter, r *http.Request, e AuditEntry, err error) {
	if err != nil && !errors.Is(err, ErrNotPropagated) {
		h.fail(w, r, err)
		return
	}
	if err != nil {
		httpjson.Write(w, http.StatusOK, struct {
			AuditEntry
			Warning string `json:"warning"`
		}{e, "change stored, but other instances see it only when their caches expire"})
		return
	}
	httpjson.Write(w, http.StatusOK, e)
}

func (h *operatorHandler) search(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	limit, ok := intParam(w, q.Get("limit"))
	if !ok {
		return
	}
	page, err := h.c.Search(r.Context(), Query{
		UserID: q.Get("user"), Name: q.Get("name"), Status: Status(q.Get("status")), AppID: q.Get("app"),
		After: q.Get("after"), Limit: limit,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, page)
}

func (h *operatorHandler) device(w http.ResponseWriter, r *http.Request, _ string) {
	d, err := h.c.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, d)
}

type statusRequest struct {
	Status Status `json:"status"`
	Reason string `json:"reason"`
}

func (h *operatorHandler) setStatus(w http.ResponseWriter, r *http.Request, operator string) {
	var req statusRequest
	if err := httpjson.Read(w, r, maxOperatorBody, &req); err != nil {
		badRequest(w, err.Error())
		return
	}
	e, err := h.c.SetStatus(r.Context(), StatusChange{
		DeviceID: r.PathValue("id"), AppID: r.PathValue("app"), Status: req.Status, Actor: operator, Reason: req.Reason,
	})
	h.changed(w, r, e, err)
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

func (h *operatorHandler) unregister(w http.ResponseWriter, r *http.Request, operator string) {
	var req reasonRequest
	if err := httpjson.Read(w, r, maxOperatorBody, &req); err != nil {
		badRequest(w, err.Error())
		return
	}
	e, err := h.c.Unregister(r.Context(), Unregistration{DeviceID: r.PathValue("id"), Actor: operator, Reason: req.Reason})
	h.changed(w, r, e, err)
}

// auditPage is the answer of the audit routes.
type auditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the "before" of the next page, or 0 at the end.
	Next uint64 `json:"next,omitempty"`
}

func (h *operatorHandler) audit(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	limit, ok := intParam(w, q.Get("limit"))
	if !ok {
		return
	}
	var before uint64
	if s := q.Get("before"); s != "" {
		var err error
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			badRequest(w, "before must be an audit sequence number")
			return
		}
	}
	device := q.Get("device")
	if id := r.PathValue("id"); id != "" {
		device = id
	}
	entries, err := h.c.Audit(r.Context(), AuditQuery{DeviceID: device, AppID: q.Get("app"), Before: before, Limit: limit})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := auditPage{Entries: entries}
	if len(entries) > 0 && len(entries) == PageLimit(limit) {
		page.Next = entries[len(entries)-1].Seq
	}
	httpjson.Write(w, http.StatusOK, page)
}

func intParam(w http.ResponseWriter, s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		badRequest(w, "limit must be a non-negative integer")
		return 0, false
	}
	return n, true
}

func (h *operatorHandler) policies(w http.ResponseWriter, r *http.Request, _ string) {
	ps, err := h.c.Policies(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, struct {
		Policies []Policy `json:"policies"`
	}{ps})
}

func (h *operatorHandler) policy(w http.ResponseWriter, r *http.Request, _ string) {
	p, err := h.c.Policy(r.Context(), r.PathValue("app"), r.PathValue("platform"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

// PolicyRequest is the body of PUT /policies/{app}/{platform}: the
// policy's fields (see [Policy]; app_id and platform may be left out, and
// must match the path when given; updated_at and updated_by are ignored)
// and the reason for the change.
type PolicyRequest struct {
	Policy
	Reason string `json:"reason"`
}

func (h *operatorHandler) setPolicy(w http.ResponseWriter, r *http.Request, operator string) {
	var req PolicyRequest
	if err := httpjson.Read(w, r, maxOperatorBody, &req); err != nil {
		badRequest(w, err.Error())
		return
	}
	p := req.Policy
	app, platform := r.PathValue("app"), r.PathValue("platform")
	if (p.AppID != "" && p.AppID != app) || (p.Platform != "" && p.Platform != platform) {
		badRequest(w, "app_id and platform in the body differ from the path")
		return
	}
	p.AppID, p.Platform = app, platform
	e, err := h.c.SetPolicy(r.Context(), PolicyChange{Policy: p, Actor: operator, Reason: req.Reason})
	h.changed(w, r, e, err)
}

func (h *operatorHandler) deletePolicy(w http.ResponseWriter, r *http.Request, operator string) {
	e, err := h.c.DeletePolicy(r.Context(), PolicyRemoval{
		AppID: r.PathValue("app"), Platform: r.PathValue("platform"), Actor: operator, Reason: r.URL.Query().Get("reason"),
	})
	if err == nil && e.Seq == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.changed(w, r, e, err)
}

// OperatorToken is one operator's bearer token for [NewTokenAuthorizer].
type OperatorToken struct {
	// Operator is the name the audit trail records.
	Operator string
	// Token is the bearer token: at least MinOperatorTokenLen bytes,
	// generated randomly (for example 32 bytes from crypto/rand,
	// base64url-encoded). It is kept only as a SHA-256 digest.
	Token string
	// ReadOnly limits the operator to ReadDevices and ReadPolicies.
	ReadOnly bool
}

// MinOperatorTokenLen is the shortest token NewTokenAuthorizer accepts.
const MinOperatorTokenLen = 32

// NewTokenAuthorizer returns an [Authorizer] that accepts
// "Authorization: Bearer <token>" with one of the given tokens, compared
// in constant time. It suits small deployments and scripts (the moat
// device CLI sends such a token); larger ones authorize operators through
// their own identity system with an [AuthorizerFunc].
func NewTokenAuthorizer(tokens ...OperatorToken) (Authorizer, error) {
	if len(tokens) == 0 {
		return nil, errors.New("moat/device: token authorizer needs at least one token")
	}
	a := &tokenAuthorizer{}
	seen := map[[sha256.Size]byte]bool{}
	for i, t := range tokens {
		if err := checkID("operator", t.Operator); err != nil {
			return nil, fmt.Errorf("moat/device: token %d: %w", i, err)
		}
		if len(t.Token) < MinOperatorTokenLen {
			return nil, fmt.Errorf("moat/device: token of %s is shorter than %d bytes", t.Operator, MinOperatorTokenLen)
		}
		d := sha256.Sum256([]byte(t.Token))
		if seen[d] {
			return nil, fmt.Errorf("moat/device: token of %s is given twice", t.Operator)
		}
		seen[d] = true
		a.tokens = append(a.tokens, hashedToken{digest: d, operator: t.Operator, readOnly: t.ReadOnly})
	}
	return a, nil
}

type tokenAuthorizer struct{ tokens []hashedToken }

var _ Authorizer = (*tokenAuthorizer)(nil)

type hashedToken struct {
	digest   [sha256.Size]byte
	operator string
	readOnly bool
}

func (a *tokenAuthorizer) Authorize(r *http.Request, op Operation) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrUnauthorized
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", ErrUnauthorized
	}
	t := a.tokens[match]
	if t.readOnly && op != ReadDevices && op != ReadPolicies {
		return "", ErrForbidden
	}
	return t.operator, nil
}
