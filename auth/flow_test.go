package auth_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestTravelFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	c := h.newClient("device-1", "alice", "correct horse")
	require.NoError(t, c.Authorize(ctx, "reservations", "payments"))

	resp, err := h.get(c, "/reservations/42")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "reservation 42 for alice", body(t, resp))

	// Paying needs the SMS factor: the client steps up on its own.
	resp, err = h.post(c, "/reservations/42/pay")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "paid", body(t, resp))
	require.Contains(t, h.events.kinds(), "step_up_completed")
}
