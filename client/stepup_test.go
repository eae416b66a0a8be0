package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// On an RFC 9470 401 the client goes back to the Authorization Challenge
// Endpoint with its auth_session and the demanded acr_values and max_age,
// answers the challenge through its handler, and retries the original
// request once: a resource that keeps demanding a step-up gets its 401
// back, not a loop.
func TestStepUpRetriesOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var apiCalls, smsAsked int
	f := newFakeServer(t, func(_ int, body map[string]any) (int, map[string]any) {
		if body["acr_values"] != nil {
			return http.StatusUnauthorized, map[string]any{"error": "insufficient_authorization", "auth_session": "s1",
				"challenges": map[string]any{"SMSOTP": map[string]any{"length": 6}}}
		}
		return http.StatusOK, map[string]any{"authorization_code": "c"}
	})
	f.mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		apiCalls++
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="insufficient_user_authentication", acr_values="mfa", max_age="300"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	ctx := context.Background()
	c := newFakeClient(t, f, func(context.Context, json.RawMessage) (any, error) {
		mu.Lock()
		smsAsked++
		mu.Unlock()
		return map[string]string{"code": "123456"}, nil
	})
	require.NoError(t, c.Authorize(ctx, "payments"))

	req, err := http.NewRequest(http.MethodPost, f.URL+"/pay", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the second demand comes back to the caller")
	require.Equal(t, 2, apiCalls, "the original request is retried once")
	require.Equal(t, 1, smsAsked)

	challenges := f.bodies()
	require.Len(t, challenges, 3) // sign-in, step-up, its answer
	stepUp := challenges[1]
	require.Equal(t, "s1", stepUp["auth_session"], "the step-up reuses the auth session")
	require.Equal(t, "mfa", stepUp["acr_values"])
	require.EqualValues(t, 300, stepUp["max_age"])
	require.NotContains(t, stepUp, "client_id")
	require.Equal(t, map[string]any{"SMSOTP": map[string]any{"code": "123456"}}, challenges[2]["answers"])
}
