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

// fakeServer is a stand-in authorization server: it serves the metadata,
// a token endpoint that issues a DPoP-bound token for any code, and an
// Authorization Challenge Endpoint at /ac that records each request's
// JSON body and answers with answer (given the request's number, from 1).
// More routes can be added to mux.
type fakeServer struct {
	*httptest.Server
	mux      *http.ServeMux
	mu       sync.Mutex
	requests []map[string]any
}

func newFakeServer(t *testing.T, answer func(n int, body map[string]any) (status int, reply map[string]any)) *fakeServer {
	t.Helper()
	f := &fakeServer{mux: http.NewServeMux()}
	f.mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": f.URL, "authorization_challenge_endpoint": f.URL + "/ac", "token_endpoint": f.URL + "/token",
		})
	})
	f.mux.HandleFunc("POST /ac", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		f.mu.Lock()
		f.requests = append(f.requests, body)
		n := len(f.requests)
		f.mu.Unlock()
		status, reply := answer(n, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(reply)
	})
	f.mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 600, "auth_session": "s1"})
	})
	f.Server = httptest.NewServer(f.mux)
	t.Cleanup(f.Close)
	return f
}

// bodies returns the recorded Authorization Challenge Endpoint requests.
func (f *fakeServer) bodies() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.requests...)
}

// newFakeClient returns a client of f, registered as client-1, with an
// SMSOTP challenge handler.
func newFakeClient(t *testing.T, f *fakeServer, sms client.ChallengeHandler) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{
		Issuer: f.URL, HTTPClient: f.Client(), AppID: "app", Platform: "ios", Channel: "phone", DeviceID: "d1",
		Handlers: map[string]client.ChallengeHandler{"SMSOTP": sms},
	})
	require.NoError(t, err)
	c.Resume("client-1")
	return c
}
