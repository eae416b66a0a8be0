package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	std := stdio{in: strings.NewReader(stdin), out: &out, err: &errb, getenv: func(k string) string { return env[k] }}
	code = run(context.Background(), std, args)
	return code, out.String(), errb.String()
}

func TestUsageAndExitCodes(t *testing.T) {
	code, _, stderr := runCLI(t, "", nil)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "Usage: moat")

	code, stdout, _ := runCLI(t, "", nil, "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "version")

	code, _, stderr = runCLI(t, "", nil, "frobnicate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `unknown command "frobnicate"`)

	code, stdout, _ = runCLI(t, "", nil, "version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(stdout, "moat "))

	code, _, _ = runCLI(t, "", nil, "version", "extra")
	require.Equal(t, exitUsage, code)

	code, _, _ = runCLI(t, "", nil, "version", "--bogus")
	require.Equal(t, exitUsage, code)

	code, stdout, _ = runCLI(t, "", nil, "help", "version")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "Usage: moat version")
}

// TestInputFilesAreBounded: a device such as /dev/zero given as an input
// file is refused with an error instead of being read into memory.
func TestInputFilesAreBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	for _, args := range [][]string{
		{"pins", "compute", "--in", "/dev/zero"},
		{"update", "verify", "--root", "/dev/zero", "--manifest", "/dev/zero"},
	} {
		code, _, stderr := runCLI(t, "", nil, args...)
		require.NotZero(t, code, "%v", args)
		require.Contains(t, stderr, "input too large", "%v", args)
	}
}
