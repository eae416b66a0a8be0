package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// fastInit creates a store with the cheapest Argon2id parameters.
func fastInit(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, "", env, "store", "init", "--dir", dir, "--passcode-env", "PC",
		"--argon2-time", "1", "--argon2-memory", "8", "--argon2-threads", "1")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "created store")
	require.Contains(t, stdout, "aes-256-gcm, Argon2id t=1 m=8MiB p=1")
}

func TestStoreCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "vault")
	env := map[string]string{"PC": "first passcode", "NEW": "second passcode", "WRONG": "nope"}
	fastInit(t, dir, env)

	code, _, stderr := runCLI(t, "", env, "store", "init", "--dir", dir, "--passcode-env", "PC", "--argon2-memory", "8", "--argon2-time", "1")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "already exists")

	code, _, stderr = runCLI(t, "s3cr3t value\n", env, "store", "put", "--dir", dir, "--passcode-env", "PC", "api-token")
	require.Equal(t, exitOK, code, stderr)
	in := filepath.Join(t.TempDir(), "value.bin")
	require.NoError(t, os.WriteFile(in, []byte{0, 1, 2}, 0o600))
	code, _, stderr = runCLI(t, "", env, "store", "put", "--dir", dir, "--passcode-env", "PC", "--in", in, "binary")
	require.Equal(t, exitOK, code, stderr)

	code, stdout, _ := runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "PC", "api-token")
	require.Equal(t, exitOK, code)
	require.Equal(t, "s3cr3t value\n", stdout)
	code, stdout, _ = runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "PC", "binary")
	require.Equal(t, exitOK, code)
	require.Equal(t, "\x00\x01\x02", stdout)

	code, stdout, _ = runCLI(t, "", env, "store", "list", "--dir", dir, "--passcode-env", "PC")
	require.Equal(t, exitOK, code)
	require.Equal(t, "\"api-token\"\n\"binary\"\n", stdout)
	code, stdout, _ = runCLI(t, "", env, "store", "list", "--dir", dir, "--passcode-env", "PC", "--prefix", "bin")
	require.Equal(t, exitOK, code)
	require.Equal(t, "\"binary\"\n", stdout)

	code, _, stderr = runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "PC", "missing")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "not found")

	code, _, stderr = runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "WRONG", "api-token")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "wrong passcode")
	require.NotContains(t, stderr, "nope")

	code, stdout, stderr = runCLI(t, "", env, "store", "passwd", "--dir", dir, "--passcode-env", "PC", "--new-passcode-env", "NEW")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "passcode changed")
	code, _, _ = runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "PC", "api-token")
	require.Equal(t, exitRefused, code, "the old passcode no longer opens the store")
	code, stdout, _ = runCLI(t, "", env, "store", "get", "--dir", dir, "--passcode-env", "NEW", "api-token")
	require.Equal(t, exitOK, code)
	require.Equal(t, "s3cr3t value\n", stdout)

	// Nothing in the directory shows a key or a value.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), "api-token")
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(raw), "s3cr3t")
	}
}

func TestStoreCommandUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"PC": "pc"}
	for _, args := range [][]string{
		{"store"},
		{"store", "frob"},
		{"store", "get", "--passcode-env", "PC", "k"},
		{"store", "get", "--dir", dir, "--passcode-env", "PC"},
		{"store", "put", "--dir", dir, "--passcode-env", "PC", "a", "b"},
		{"store", "list", "--dir", dir, "extra"},
		{"store", "init", "--dir", dir, "--aead", "rot13"},
		{"store", "init", "--passcode-env", "PC"},
		{"store", "keygen"},
		{"store", "keygen", "--id", "0"},
		{"store", "init", "--dir", dir, "--passcode", "on-argv"},
	} {
		code, _, _ := runCLI(t, "", env, args...)
		require.Equal(t, exitUsage, code, "%q", args)
	}
	code, stdout, _ := runCLI(t, "", nil, "store", "--help")
	require.Equal(t, exitOK, code)
	for _, sub := range []string{"init", "put", "get", "list", "passwd"} {
		require.Contains(t, stdout, sub)
	}
	code, _, stderr := runCLI(t, "", env, "store", "get", "--dir", filepath.Join(dir, "absent"), "--passcode-env", "PC", "k")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "no store")
	code, _, stderr = runCLI(t, "", env, "store", "passwd", "--dir", filepath.Join(dir, "absent"), "--passcode-env", "PC", "--new-passcode-env", "PC")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "no store")
	require.NoDirExists(t, filepath.Join(dir, "absent"), "a refused command creates nothing")
	code, _, stderr = runCLI(t, "", env, "store", "init", "--dir", filepath.Join(dir, "x"), "--passcode-env", "UNSET")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "UNSET is empty or unset")
	code, _, stderr = runCLI(t, "", env, "store", "init", "--dir", filepath.Join(dir, "y"), "--passcode-env", "PC", "--argon2-memory", "4096")
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "out of bounds")
}

func TestStoreKeygen(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "", nil, "store", "keygen", "--id", "3")
	require.Equal(t, exitOK, code)
	keys, err := securestore.ParseSealerKeys(stdout)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, uint32(3), keys[0].ID)
}

// TestStorePrompt stands in for the terminal: the passcode is asked for,
// twice when it is new, and a mismatch or a missing terminal refuses.
// Not parallel: it replaces promptPasscode.
func TestStorePrompt(t *testing.T) {
	saved := promptPasscode
	t.Cleanup(func() { promptPasscode = saved })
	var answers []string
	var prompts []string
	promptPasscode = func(prompt string) ([]byte, error) {
		prompts = append(prompts, prompt)
		if len(answers) == 0 {
			return nil, errors.New("no terminal to ask for the passcode on: name an environment variable with --passcode-env")
		}
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}
	dir := filepath.Join(t.TempDir(), "vault")
	fast := []string{"--argon2-time", "1", "--argon2-memory", "8", "--argon2-threads", "1"}

	answers = []string{"typed", "typo"}
	code, _, stderr := runCLI(t, "", nil, append([]string{"store", "init", "--dir", dir}, fast...)...)
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "do not match")

	answers = []string{"typed", "typed"}
	code, _, stderr = runCLI(t, "", nil, append([]string{"store", "init", "--dir", dir}, fast...)...)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, []string{"New passcode: ", "Repeat to confirm: "}, prompts[2:])

	answers = []string{"typed"}
	code, _, stderr = runCLI(t, "value", nil, "store", "put", "--dir", dir, "k")
	require.Equal(t, exitOK, code, stderr)

	answers = nil
	code, _, stderr = runCLI(t, "", nil, "store", "get", "--dir", dir, "k")
	require.Equal(t, exitRefused, code)
	require.True(t, strings.Contains(stderr, "--passcode-env"), stderr)

	answers = []string{"typed", "", ""}
	code, _, stderr = runCLI(t, "", nil, "store", "passwd", "--dir", dir)
	require.Equal(t, exitRefused, code)
	require.Contains(t, stderr, "empty passcode")
}
