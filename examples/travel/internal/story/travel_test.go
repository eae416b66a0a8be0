package story

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// playStory starts a deployment, closed when the test ends, and plays the
// story against it. It returns the deployment and the transcript.
func playStory(ctx context.Context, t *testing.T, opts Options, popts PlayOptions) (*Deployment, string) {
	t.Helper()
	d, err := Start(opts)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	var out bytes.Buffer
	require.NoError(t, Play(ctx, d, &out, popts), out.String())
	return d, out.String()
}

// TestStory plays the whole travel story, as `go run ./examples/travel`
// does, and checks the transcript's key lines.
func TestStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, tr := playStory(ctx, t, Options{}, PlayOptions{})
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

// TestStoryOnThreeInstances plays the story through the round-robin
// balancer in front of three instances sharing in-memory backends: every
// call goes to the next instance, and every step still has its outcome.
// (The same over Redis and PostgreSQL is ../../instances.)
func TestStoryOnThreeInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, tr := playStory(ctx, t, Options{Instances: 3}, PlayOptions{})
	require.Contains(t, tr, "the story went as expected")
	for _, name := range []string{"a", "b", "c"} {
		require.Contains(t, tr, "\n  "+name+" POST   /oauth/authorize-challenge", "instance %s served calls", name)
		require.Contains(t, tr, "instance "+name+":", "instance %s's analytics were read", name)
	}
}
