package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStory plays the whole travel story, as `go run ./examples/travel`
// does, and checks the transcript's key lines.
func TestStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	srv, err := runStory(ctx, &out, storyOptions{logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if srv != nil {
		defer srv.close()
	}
	require.NoError(t, err, out.String())
	tr := out.String()
	for _, want := range []string{
		"POST   /oauth/register                                201",
		"401 insufficient_user_authentication",
		"403 check_blocked",
		"403 device_blocked",
		"(notice: Version 2.0 fixes a security issue. Please update.)",
		"403 app_version_blocked",
		"403 update_required",
		"bundles/2/from-1.zip 200",
		"refused: TLS verified, but no certificate on the chain has a pinned key",
		"INSECURE development verifier",
		"the story went as expected",
	} {
		require.Contains(t, tr, want)
	}
	for _, line := range strings.Split(tr, "\n") {
		require.NotContains(t, line, "eyJ", "no token reaches the transcript")
	}
}
