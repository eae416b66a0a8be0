package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/client"
)

// On an RFC 9470 401 the client goes back to the Authorization Challenge
// Endpoint with its auth_session and the demanded acr_values and max_age,
// answers the challenge through its handler, and retries the original
// request once: a resource that keeps demanding a step-up gets its 401
// back, not a loop.
func TestStepUpRetriesOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var challenges []map[string]any
	var apiCalls, smsAsked int
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
		challenges = append(challenges, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if body["acr_values"] != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "insufficient_authorization", "auth_session": "s1",
				"challenges": map[string]any{"SMSOTP": map[string]any{"length": 6}}})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"authorization_code": "c"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 600, "auth_session": "s1"})
	})
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		apiCalls++
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="insufficient_user_authentication", acr_values="mfa", max_age="300"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, err := client.New(ctx, client.Config{
		Issuer: srv.URL, HTTPClient: srv.Client(), AppID: "app", Platform: "ios", Channel: "phone", DeviceID: "d1",
		Handlers: map[string]client.ChallengeHandler{"SMSOTP": func(context.Context, json.RawMessage) (any, error) {
			mu.Lock()
			smsAsked++
			mu.Unlock()
			return map[string]string{"code": "123456"}, nil
		}},
	})
	require.NoError(t, err)
	c.Resume("client-1")
	require.NoError(t, c.Authorize(ctx, "payments"))

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/pay", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the second demand comes back to the caller")
	require.Equal(t, 2, apiCalls, "the original request is retried once")
	require.Equal(t, 1, smsAsked)

	require.Len(t, challenges, 3) // sign-in, step-up, its answer
	stepUp := challenges[1]
	require.Equal(t, "s1", stepUp["auth_session"], "the step-up reuses the auth session")
	require.Equal(t, "mfa", stepUp["acr_values"])
	require.EqualValues(t, 300, stepUp["max_age"])
	require.NotContains(t, stepUp, "client_id")
	require.Equal(t, map[string]any{"SMSOTP": map[string]any{"code": "123456"}}, challenges[2]["answers"])
}
