package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatsec/moat/internal/httpjson"
)

// Error codes of the Authorization Challenge Endpoint
// (draft-ietf-oauth-first-party-apps) and moat's additions.
const (
	CodeInsufficientAuthorization = "insufficient_authorization"
	CodeInvalidSession            = "invalid_session"
	CodeInvalidClient             = "invalid_client"
	CodeInvalidScope              = "invalid_scope"
	CodeInvalidGrant              = "invalid_grant"
	CodeUnauthorizedClient        = "unauthorized_client"
	CodeAccessDenied              = "access_denied"
	// CodeCheckBlocked: a security check is blocked after too many
	// failures; the body says which check and until when (moat extension).
	CodeCheckBlocked = "check_blocked"
)

const maxAnswers = 32

// challengeRequest is the JSON body of POST <prefix>/authorize-challenge.
type challengeRequest struct {
	ClientID    string                     `json:"client_id,omitempty"`
	Scope       string                     `json:"scope,omitempty"`
	ACRValues   string                     `json:"acr_values,omitempty"`
	MaxAge      *int64                     `json:"max_age,omitempty"`
	AuthSession string                     `json:"auth_session,omitempty"`
	Answers     map[string]json.RawMessage `json:"answers,omitempty"`
}

// grant is what an authorization code or a refresh token stands for.
type grant struct {
	ClientID    string   `json:"client_id"`
	JKT         string   `json:"jkt,omitempty"`
	SessionHash string   `json:"session,omitempty"`
	Subject     string   `json:"sub,omitempty"`
	Scope       []string `json:"scope,omitempty"`
	ACR         string   `json:"acr,omitempty"`
	AMR         []string `json:"amr,omitempty"`
	AMRTimes    []int64  `json:"amr_at,omitempty"`
	AuthTime    int64    `json:"auth_time,omitempty"`
	// Until is when the earliest of the granting checks' successes ends.
	Until int64 `json:"until"`
	// Checks are the checks that granted it.
	Checks []string `json:"checks,omitempty"`
	// Family, FamilyExpires and Used belong to refresh tokens.
	Family        string `json:"family,omitempty"`
	FamilyExpires int64  `json:"family_expires,omitempty"`
	Used          bool   `json:"used,omitempty"`
}

// step is one check to run for an authorization.
type step struct {
	name   string
	maxAge *int64
}

// handleChallenge serves the Authorization Challenge Endpoint.
func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req challengeRequest
	if err := httpjson.Read(w, r, s.cfg.MaxBodySize, &req); err != nil {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
		return
	}
	if len(req.Answers) > maxAnswers {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "too many answers")
		return
	}
	for name := range req.Answers {
		if _, ok := s.checks[name]; !ok {
			oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "answer for an unknown check")
			return
		}
	}
	if req.MaxAge != nil && (*req.MaxAge < 0 || *req.MaxAge > 10*365*24*3600) {
		oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "max_age must be a non-negative number of seconds")
		return
	}
	proof, ok := s.verifyProof(w, r, s.endpoints.challenge)
	if !ok {
		return
	}

	var sess *authSession
	sessValue := req.AuthSession
	if sessValue != "" {
		var err error
		if sess, err = s.loadSession(ctx, sessValue); err != nil {
			s.unavailable(w, r, "loading auth session", err)
			return
		}
		if sess == nil {
			oauthError(w, http.StatusBadRequest, CodeInvalidSession, "auth_session is unknown or expired")
			return
		}
		if sess.JKT != proof.KeyThumbprint || (req.ClientID != "" && req.ClientID != sess.ClientID) {
			oauthError(w, http.StatusBadRequest, CodeInvalidSession, "auth_session belongs to another client")
			return
		}
	} else {
		if req.ClientID == "" {
			oauthError(w, http.StatusBadRequest, CodeInvalidRequest, "client_id or auth_session is required")
			return
		}
		// The session's public id exists before its first check runs, so
		// that every check of the session, the first one too, sees the
		// same CheckRequest.SessionID.
		id, err := randomToken(12)
		if err != nil {
			s.unavailable(w, r, "making session id", err)
			return
		}
		sess = &authSession{ID: id, ClientID: req.ClientID, JKT: proof.KeyThumbprint}
	}

	client, ok := s.publicClient(w, r, sess.ClientID, proof)
	if !ok {
		return
	}
	if req.Scope != "" || req.ACRValues != "" || req.MaxAge != nil {
		if scope := strings.Fields(req.Scope); len(scope) > 0 {
			sess.Scope = scope
		}
		sess.ACRValues = strings.Fields(req.ACRValues)
		sess.MaxAge = req.MaxAge
	}
	if len(sess.Scope) == 0 {
		oauthError(w, http.StatusBadRequest, CodeInvalidScope, "scope is required")
		return
	}
	plan, err := s.plan(client, sess.Scope, sess.ACRValues, sess.MaxAge)
	if err != nil {
		var pe *planError
		if errors.As(err, &pe) {
			oauthError(w, http.StatusBadRequest, pe.code, pe.msg)
			return
		}
		s.unavailable(w, r, "planning checks", err)
		return
	}
	s.authorize(w, r, client, sess, sessValue, plan, req.Answers)
}

// publicClient loads a registered public client and checks that the DPoP
// proof is signed by its key and that its policy lets it go on. On failure
// it has answered the request.
func (s *Server) publicClient(w http.ResponseWriter, r *http.Request, id string, proof *DPoPProof) (*Client, bool) {
	client, err := s.cfg.Clients.Client(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		oauthError(w, http.StatusUnauthorized, CodeInvalidClient, "unknown client")
		return nil, false
	}
	if err != nil {
		s.unavailable(w, r, "loading client", err)
		return nil, false
	}
	if client.Confidential {
		oauthError(w, http.StatusBadRequest, CodeUnauthorizedClient, "confidential clients use client_credentials")
		return nil, false
	}
	if client.KeyThumbprint == "" || client.KeyThumbprint != proof.KeyThumbprint {
		oauthError(w, http.StatusUnauthorized, CodeInvalidClient, "the DPoP proof is not signed by the client's registered key")
		return nil, false
	}
	if !s.allowClient(w, r, client) {
		return nil, false
	}
	return client, true
}

// allowClient asks the client policy; on refusal it has answered.
func (s *Server) allowClient(w http.ResponseWriter, r *http.Request, client *Client) bool {
	if s.cfg.ClientPolicy == nil {
		return true
	}
	err := s.cfg.ClientPolicy.AllowClient(r.Context(), client)
	if err == nil {
		return true
	}
	var ref *Refusal
	if errors.As(err, &ref) {
		s.emit(r.Context(), Event{Kind: EventClientRefused, Client: client, Reason: ref.Code})
	}
	s.refuse(w, r, "client policy", err)
	return false
}

type planError struct{ code, msg string }

func (e *planError) Error() string { return e.msg }

// plan lists the checks an authorization runs, in order: the mandatory
// checks, the checks of each scope element, then those of each acr value.
// maxAge applies to the acr values' checks, or to the scope's checks when
// no acr values were asked for.
func (s *Server) plan(c *Client, scope, acrValues []string, maxAge *int64) ([]step, error) {
	var steps []step
	index := map[string]int{}
	add := func(name string, age *int64) {
		if i, ok := index[name]; ok {
			if age != nil {
				steps[i].maxAge = age
			}
			return
		}
		index[name] = len(steps)
		steps = append(steps, step{name: name, maxAge: age})
	}
	for _, n := range s.mandatory {
		add(n, nil)
	}
	scopeAge := maxAge
	if len(acrValues) > 0 {
		scopeAge = nil
	}
	for _, sc := range scope {
		rule, ok := s.scopeRule(c, sc)
		if !ok {
			return nil, &planError{CodeInvalidScope, fmt.Sprintf("unknown scope %q", truncate(sc))}
		}
		for _, n := range rule.Checks {
			add(n, scopeAge)
		}
	}
	for _, v := range acrValues {
		i := slices.IndexFunc(s.cfg.ACRs, func(a ACR) bool { return a.Value == v })
		if i < 0 {
			return nil, &planError{CodeInvalidRequest, fmt.Sprintf("unknown acr value %q", truncate(v))}
		}
		for _, n := range s.cfg.ACRs[i].Checks {
			add(n, maxAge)
		}
	}
	return steps, nil
}

// scopeRule finds the most specific rule for a scope element.
func (s *Server) scopeRule(c *Client, scope string) (ScopeRule, bool) {
	best, bestScore := ScopeRule{}, -1
	for _, r := range s.cfg.Scopes {
		if r.Scope != scope || (r.AppID != "" && r.AppID != c.AppID) || (r.Channel != "" && r.Channel != c.Channel) {
			continue
		}
		score := 0
		if r.AppID != "" {
			score += 2
		}
		if r.Channel != "" {
			score++
		}
		if score > bestScore {
			best, bestScore = r, score
		}
	}
	return best, bestScore >= 0
}

type grantedCheck struct {
	name string
	st   *success
}

// authorize runs the plan's checks in order and answers with a challenge,
// a refusal, or an authorization code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, client *Client, sess *authSession, sessValue string, plan []step, answers map[string]json.RawMessage) {
	ctx := r.Context()
	now := s.cfg.Now()
	var got []grantedCheck
	for _, st := range plan {
		held, err := s.loadSuccess(ctx, client, st.name)
		if err != nil {
			s.unavailable(w, r, "loading check state", err)
			return
		}
		if held != nil && (st.maxAge == nil || now.Unix()-held.At <= *st.maxAge) &&
			(held.Subject == "" || sess.Subject == "" || held.Subject == sess.Subject) {
			if sess.Subject == "" {
				sess.Subject = held.Subject
			}
			got = append(got, grantedCheck{st.name, held})
			continue
		}
		answer := answers[st.name]
		res, err := s.checks[st.name].Authorize(ctx, &CheckRequest{
			Client: client, Subject: sess.Subject, Answer: answer, SessionID: sess.ID, Now: now,
		})
		if err != nil {
			s.unavailable(w, r, "check "+st.name, err)
			return
		}
		switch res.Status {
		case CheckSuccess:
			if res.ValidFor <= 0 {
				s.unavailable(w, r, "check "+st.name, errors.New("success without a positive ValidFor"))
				return
			}
			if res.Subject != "" && sess.Subject != "" && res.Subject != sess.Subject {
				s.emit(ctx, Event{Kind: EventCheckRefused, Client: client, Check: st.name, Reason: "subject_mismatch"})
				httpjson.WriteError(w, http.StatusForbidden, CodeAccessDenied, "the check identified a different user than this session's", map[string]any{"check": st.name})
				return
			}
			if res.Subject != "" {
				sess.Subject = res.Subject
			}
			held = &success{Subject: sess.Subject, AMR: res.AMR, At: now.Unix(), Until: now.Add(res.ValidFor).Unix()}
			if err := s.saveSuccess(ctx, client, st.name, held); err != nil {
				s.unavailable(w, r, "saving check state", err)
				return
			}
			if answer != nil {
				s.emit(ctx, Event{Kind: EventChallengeAnswered, Client: client, Check: st.name})
			}
			got = append(got, grantedCheck{st.name, held})
		case CheckChallenge:
			value, ok := s.keepSession(w, r, sess, sessValue)
			if !ok {
				return
			}
			if answer != nil {
				s.emit(ctx, Event{Kind: EventChallengeFailed, Client: client, Check: st.name, Reason: res.Reason})
			}
			s.emit(ctx, Event{Kind: EventChallengeIssued, Client: client, Check: st.name})
			challenge := res.Challenge
			if challenge == nil {
				challenge = map[string]any{}
			}
			httpjson.WriteError(w, http.StatusUnauthorized, CodeInsufficientAuthorization,
				"answer the challenges to continue", map[string]any{
					"auth_session": value,
					"challenges":   map[string]any{st.name: challenge},
				})
			return
		case CheckBlocked:
			value, ok := s.keepSession(w, r, sess, sessValue)
			if !ok {
				return
			}
			s.emit(ctx, Event{Kind: EventCheckBlocked, Client: client, Check: st.name, Reason: res.Reason})
			extra := map[string]any{"check": st.name, "auth_session": value}
			if !res.BlockedUntil.IsZero() {
				extra["blocked_until"] = res.BlockedUntil.UTC().Format(time.RFC3339)
				if secs := int64(res.BlockedUntil.Sub(now).Seconds() + 0.999); secs > 0 {
					w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
				}
			}
			httpjson.WriteError(w, http.StatusForbidden, CodeCheckBlocked, "too many failed attempts; try again later", extra)
			return
		case CheckRefused:
			s.emit(ctx, Event{Kind: EventCheckRefused, Client: client, Check: st.name, Reason: res.Reason})
			extra := map[string]any{"check": st.name}
			if res.Reason != "" {
				extra["reason"] = res.Reason
			}
			httpjson.WriteError(w, http.StatusForbidden, CodeAccessDenied, "the check refused this authorization", extra)
			return
		default:
			s.unavailable(w, r, "check "+st.name, fmt.Errorf("invalid status %d", res.Status))
			return
		}
	}

	g := s.grantFrom(client, sess, got)
	code, err := randomToken(32)
	if err != nil {
		s.unavailable(w, r, "making code", err)
		return
	}
	stepUp := len(sess.ACRValues) > 0
	sess.ACRValues, sess.MaxAge = nil, nil
	if sessValue == "" {
		if sessValue, err = s.newSession(ctx, sess); err != nil {
			s.unavailable(w, r, "saving auth session", err)
			return
		}
	} else if err := s.saveSession(ctx, sessValue, sess); err != nil {
		s.unavailable(w, r, "saving auth session", err)
		return
	}
	g.SessionHash = sha256b64(sessValue)
	if err := s.putJSON(ctx, keyCode+sha256b64(code), g, s.cfg.CodeTTL); err != nil {
		s.unavailable(w, r, "saving code", err)
		return
	}
	if stepUp {
		s.emit(ctx, Event{Kind: EventStepUpCompleted, Client: client, ACR: g.ACR})
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"authorization_code": code})
}

// keepSession saves the session (creating it on the first request) and
// returns its value. On failure it has answered.
func (s *Server) keepSession(w http.ResponseWriter, r *http.Request, sess *authSession, value string) (string, bool) {
	var err error
	if value == "" {
		value, err = s.newSession(r.Context(), sess)
	} else {
		err = s.saveSession(r.Context(), value, sess)
	}
	if err != nil {
		s.unavailable(w, r, "saving auth session", err)
		return "", false
	}
	return value, true
}

// grantFrom sums up the checks that succeeded: amr (with when each method
// last succeeded), auth_time, the earliest expiry, and the strongest acr
// whose checks are all among them.
func (s *Server) grantFrom(c *Client, sess *authSession, got []grantedCheck) *grant {
	g := &grant{ClientID: c.ID, JKT: c.KeyThumbprint, Subject: sess.Subject, Scope: sess.Scope, Until: 1<<62 - 1}
	names := make([]string, 0, len(got))
	for _, gc := range got {
		names = append(names, gc.name)
		g.Until = min(g.Until, gc.st.Until)
		for _, m := range gc.st.AMR {
			if i := slices.Index(g.AMR, m); i >= 0 {
				g.AMRTimes[i] = max(g.AMRTimes[i], gc.st.At)
				continue
			}
			g.AMR = append(g.AMR, m)
			g.AMRTimes = append(g.AMRTimes, gc.st.At)
		}
		if len(gc.st.AMR) > 0 {
			g.AuthTime = max(g.AuthTime, gc.st.At)
		}
	}
	if len(got) == 0 {
		g.Until = s.cfg.Now().Add(s.cfg.AccessTokenTTL).Unix()
	}
	if s.cfg.CombineAMR != nil && len(g.AMR) > 0 {
		combined := s.cfg.CombineAMR(g.AMR)
		times := make([]int64, len(combined))
		for i, m := range combined {
			if j := slices.Index(g.AMR, m); j >= 0 {
				times[i] = g.AMRTimes[j]
			} else {
				times[i] = g.AuthTime // derived values ("mfa") date from the latest factor
			}
		}
		g.AMR, g.AMRTimes = combined, times
	}
	g.Checks = names
	g.ACR = s.acrFor(names)
	return g
}

// acrFor returns the strongest configured acr value whose checks are all
// in names.
func (s *Server) acrFor(names []string) string {
	for i := len(s.cfg.ACRs) - 1; i >= 0; i-- {
		a := s.cfg.ACRs[i]
		all := true
		for _, n := range a.Checks {
			if !slices.Contains(names, n) {
				all = false
				break
			}
		}
		if all {
			return a.Value
		}
	}
	return ""
}

// holdsAll reports whether every named check still holds for the client
// and subject (a refresh needs the checks that granted the token).
func (s *Server) holdsAll(ctx context.Context, c *Client, subject string, names []string) (bool, error) {
	for _, n := range names {
		st, err := s.loadSuccess(ctx, c, n)
		if err != nil {
			return false, err
		}
		if st == nil || (st.Subject != "" && st.Subject != subject) {
			return false, nil
		}
	}
	return true, nil
}
