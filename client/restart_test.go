package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/client"
)

// TestStepUpSurvivesEndedSession: when the auth session of a pending
// step-up ends (400 invalid_session) while the app answers a challenge,
// the client starts a new session that asks for the same acr_values and
// max_age again (it does not fall back to the plain scope and report a
// step-up that did not happen), and drops the stale answers.
func TestStepUpSurvivesEndedSession(t *testing.T) {
	var mu sync.Mutex
	var requests []map[string]any
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": srv.URL, "authorization_challenge_endpoint": srv.URL + "/ac", "token_endpoint": srv.URL + "/token",
		})
	})
	mux.HandleFunc("POST /ac", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		mu.Lock()
		requests = append(requests, body)
		n := len(requests)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case n == 1: // the step-up: an SMS challenge
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "insufficient_authorization", "auth_session": "s1", "challenges": map[string]any{"SMSOTP": map[string]any{}}})
		case n == 2: // the answer comes after the session ended
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_session"})
		case body["acr_values"] == "mfa": // a new session for the same step-up
			_ = json.NewEncoder(w).Encode(map[string]any{"authorization_code": "c1"})
		default:
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "access_denied", "error_description": "the step-up was dropped"})
		}
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 60, "auth_session": "s2"})
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	stop := errors.New("the user has not typed the code yet")
	c, err := client.New(ctx, client.Config{
		Issuer: srv.URL, HTTPClient: srv.Client(), AppID: "app", Platform: "ios", Channel: "phone", DeviceID: "d1",
		Handlers: map[string]client.ChallengeHandler{"SMSOTP": func(context.Context, json.RawMessage) (any, error) { return nil, stop }},
	})
	require.NoError(t, err)
	c.Resume("client-1")
	require.ErrorIs(t, c.StepUp(ctx, []string{"mfa"}, 300), stop)
	require.NoError(t, c.Answer(ctx, map[string]any{"SMSOTP": map[string]string{"code": "123456"}}))

	require.Len(t, requests, 3)
	require.Equal(t, "s1", requests[1]["auth_session"])
	restart := requests[2]
	require.Equal(t, "client-1", restart["client_id"])
	require.Equal(t, "mfa", restart["acr_values"])
	require.EqualValues(t, 300, restart["max_age"])
	require.NotContains(t, restart, "answers", "answers to the ended session's challenges are not replayed")
	require.NotContains(t, restart, "auth_session")
}
