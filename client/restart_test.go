package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStepUpSurvivesEndedSession: when the auth session of a pending
// step-up ends (400 invalid_session) while the app answers a challenge,
// the client starts a new session that asks for the same acr_values and
// max_age again (it does not fall back to the plain scope and report a
// step-up that did not happen), and drops the stale answers.
func TestStepUpSurvivesEndedSession(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, func(n int, body map[string]any) (int, map[string]any) {
		switch {
		case n == 1: // the step-up: an SMS challenge
			return http.StatusUnauthorized, map[string]any{"error": "insufficient_authorization", "auth_session": "s1", "challenges": map[string]any{"SMSOTP": map[string]any{}}}
		case n == 2: // the answer comes after the session ended
			return http.StatusBadRequest, map[string]any{"error": "invalid_session"}
		case body["acr_values"] == "mfa": // a new session for the same step-up
			return http.StatusOK, map[string]any{"authorization_code": "c1"}
		}
		return http.StatusForbidden, map[string]any{"error": "access_denied", "error_description": "the step-up was dropped"}
	})
	ctx := context.Background()
	stop := errors.New("the user has not typed the code yet")
	c := newFakeClient(t, f, func(context.Context, json.RawMessage) (any, error) { return nil, stop })
	require.ErrorIs(t, c.StepUp(ctx, []string{"mfa"}, 300), stop)
	require.NoError(t, c.Answer(ctx, map[string]any{"SMSOTP": map[string]string{"code": "123456"}}))

	requests := f.bodies()
	require.Len(t, requests, 3)
	require.Equal(t, "s1", requests[1]["auth_session"])
	restart := requests[2]
	require.Equal(t, "client-1", restart["client_id"])
	require.Equal(t, "mfa", restart["acr_values"])
	require.EqualValues(t, 300, restart["max_age"])
	require.NotContains(t, restart, "answers", "answers to the ended session's challenges are not replayed")
	require.NotContains(t, restart, "auth_session")
}
