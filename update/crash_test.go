package update

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The crash test re-runs this test binary as a child that applies an
// update, kills it with SIGKILL at a random moment, and checks that the
// installation holds either the complete old or the complete new version.
const (
	crashEnvDir  = "MOAT_UPDATE_CRASH_DIR"
	crashEnvURL  = "MOAT_UPDATE_CRASH_URL"
	crashEnvRoot = "MOAT_UPDATE_CRASH_ROOT"
	crashTrials  = 60
	crashFiles   = 40
)

// TestCrashChild is the child side; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashSafety")
	}
	root, err := os.ReadFile(os.Getenv(crashEnvRoot))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{BaseURL: os.Getenv(crashEnvURL), App: "com.example.app", Platform: "ios",
		AppVersion: "1.0", Root: root, Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Check(context.Background())
	if err != nil || u == nil {
		t.Fatalf("check: %v %v", u, err)
	}
	fmt.Println("ready")
	start := time.Now()
	if err := c.Apply(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("applied in %d\n", time.Since(start).Nanoseconds())
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.publish(genTree(crashFiles, 1), 1, false)
	e.publish(genTree(crashFiles, 2), 2, false)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	require.NoError(t, os.WriteFile(rootFile, e.root, 0o644))

	// child starts an apply of version 2 over version 1 in dir; it returns
	// the running command and waits until the apply is about to start.
	child := func(dir string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvURL+"="+e.http.URL, crashEnvRoot+"="+rootFile,
			"GORACE=atexit_sleep_ms=0")
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				return cmd, sc
			}
		}
		_ = cmd.Wait()
		t.Fatalf("child did not get ready")
		return nil, nil
	}
	// A kill does not lose written data, so syncing to disk only slows the
	// trials down: use a memory file system where there is one.
	base := fastTempDir(t)
	fresh := func(i int) string {
		dir := filepath.Join(base, fmt.Sprint(i))
		c := e.client(func(c *ClientConfig) { c.Dir = dir })
		require.NoError(t, c.install(ctx, e, 1))
		return dir
	}

	// Calibrate: how long an uninterrupted apply takes.
	cmd, sc := child(fresh(-1))
	var took time.Duration
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "applied in "); ok {
			var ns int64
			fmt.Sscan(n, &ns)
			took = time.Duration(ns)
		}
	}
	require.NoError(t, cmd.Wait())
	require.Positive(t, took)
	window := 2 * took

	outcomes := map[uint64]int{}
	for i := range crashTrials {
		dir := fresh(i)
		cmd, _ := child(dir)
		time.Sleep(time.Duration(rand.Int64N(int64(window))))
		_ = cmd.Process.Kill() // SIGKILL
		_ = cmd.Wait()

		v, err := readLink(dir, linkCurrent)
		require.NoError(t, err)
		require.Contains(t, []uint64{1, 2}, v, "trial %d", i)
		requireTree(t, filepath.Join(dir, linkCurrent, filesDir), genTree(crashFiles, v))
		outcomes[v]++

		// The next apply recovers from whatever the crash left.
		c := e.client(func(c *ClientConfig) { c.Dir = dir })
		_, err = c.Update(ctx)
		require.NoError(t, err, "trial %d", i)
		requireTree(t, c.Path(), genTree(crashFiles, 2))
		requireNoWorkFiles(t, dir)
	}
	t.Logf("apply took %v; after %d kills: %d old, %d new", took, crashTrials, outcomes[1], outcomes[2])
}
