package securestore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/securestore"
)

// The crash test runs this test binary again as a child that writes to a
// directory store in a loop, and kills it with SIGKILL at random moments.
const (
	crashChildEnv = "MOAT_SECURESTORE_CRASH_CHILD"
	crashTrials   = 50
	crashKeys     = 4
)

var crashPasscodes = [2][]byte{[]byte("first passcode"), []byte("second passcode")}

// openEither opens the store with whichever of the two passcodes is
// current (the child switches between them).
func openEither(ctx context.Context, b securestore.Backend) (*securestore.Store, int, error) {
	for i, pc := range crashPasscodes {
		s, err := securestore.Open(ctx, b, securestore.Passcode(pc))
		if errors.Is(err, securestore.ErrWrongPasscode) {
			continue
		}
		return s, i, err
	}
	return nil, 0, securestore.ErrWrongPasscode
}

// crashValue is what the child writes at key j in a round: its trial,
// round and key, padded to a length that varies, with a checkable pad.
func crashValue(trial, round, j int) []byte {
	head := fmt.Sprintf("t%03d-r%06d-k%02d|", trial, round, j)
	n := 50 + (round*97+j*31)%4000
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + (round+j)%26)}, n)...)
}

// parseCrashValue checks a value and returns its trial and round.
func parseCrashValue(v []byte, j int) (trial, round int, err error) {
	head, pad, ok := bytes.Cut(v, []byte("|"))
	if !ok {
		return 0, 0, fmt.Errorf("no separator in %q", v)
	}
	if _, err := fmt.Sscanf(string(head), "t%03d-r%06d-k%02d", &trial, &round, new(int)); err != nil {
		return 0, 0, fmt.Errorf("bad head %q: %v", head, err)
	}
	if !bytes.Equal(v, crashValue(trial, round, j)) || len(pad) == 0 {
		return 0, 0, fmt.Errorf("value %q is not a whole value for key %d", head, j)
	}
	return trial, round, nil
}

func crashChild(dir string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	trial, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_TRIAL"))
	b, err := securestore.NewDirBackend(dir)
	if err != nil {
		fail(err)
	}
	s, cur, err := openEither(ctx, b)
	if err != nil {
		fail(err)
	}
	c, err := s.Collection(ctx, "docs", "trial")
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	for round := 0; ; round++ {
		for j := range crashKeys {
			if err := s.Put(ctx, fmt.Sprint("key-", j), crashValue(trial, round, j)); err != nil {
				fail(err)
			}
		}
		doc := fmt.Sprintf(`{"trial":%d,"round":%d}`, trial, round)
		if err := c.Put(ctx, "doc", json.RawMessage(doc)); err != nil {
			fail(err)
		}
		switch round % 4 {
		case 0:
			if err := s.ChangePasscode(ctx, crashPasscodes[cur], crashPasscodes[1-cur]); err != nil {
				fail(err)
			}
			cur = 1 - cur
		case 1:
			if _, err := s.RotateKey(ctx); err != nil {
				fail(err)
			}
		case 2:
			if _, err := s.Reencrypt(ctx); err != nil {
				fail(err)
			}
		}
	}
}

func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	b, err := securestore.NewDirBackend(dir)
	require.NoError(t, err)
	s, err := securestore.Create(ctx, b, securestore.Passcode(crashPasscodes[0]), securestore.Config{Argon2: fastKDF})
	require.NoError(t, err)
	last := make([][2]int, crashKeys) // per key: trial and round last seen
	for j := range crashKeys {
		require.NoError(t, s.Put(ctx, fmt.Sprint("key-", j), crashValue(0, 0, j)))
	}
	c, err := s.Collection(ctx, "docs", "trial")
	require.NoError(t, err)
	require.NoError(t, c.Put(ctx, "doc", json.RawMessage(`{"trial":0,"round":0}`)))
	lastDoc := [2]int{0, 0}

	advanced, maxRound := 0, 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for trial := 1; trial <= crashTrials; trial++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_TRIAL=%d", crashChildEnv, trial))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		ready := bufio.NewScanner(out)
		for ready.Scan() && ready.Text() != "ready" {
		}
		time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit) && !exit.Exited(), "trial %d: child ended by itself (%v): %s", trial, err, stderr.String())

		// After every crash the store opens, and each record holds a
		// whole value that is the one before or a later one.
		s, _, err := openEither(ctx, b)
		require.NoError(t, err, "trial %d", trial)
		for j := range crashKeys {
			v, err := s.Get(ctx, fmt.Sprint("key-", j))
			require.NoError(t, err, "trial %d key %d", trial, j)
			tr, rd, err := parseCrashValue(v, j)
			require.NoError(t, err, "trial %d key %d", trial, j)
			require.True(t, tr == trial || (tr == last[j][0] && rd == last[j][1]), "trial %d key %d: value from trial %d round %d, last seen trial %d round %d", trial, j, tr, rd, last[j][0], last[j][1])
			last[j] = [2]int{tr, rd}
			if tr == trial {
				maxRound = max(maxRound, rd)
			}
		}
		keys, err := s.List(ctx, "")
		require.NoError(t, err)
		require.Len(t, keys, crashKeys)
		c, err := s.Collection(ctx, "docs", "trial")
		require.NoError(t, err)
		doc, err := c.Get(ctx, "doc")
		require.NoError(t, err, "trial %d", trial)
		var d struct{ Trial, Round int }
		require.NoError(t, json.Unmarshal(doc, &d))
		require.True(t, d.Trial == trial || [2]int{d.Trial, d.Round} == lastDoc, "trial %d: document from trial %d round %d", trial, d.Trial, d.Round)
		if d.Trial == trial {
			advanced++
		}
		lastDoc = [2]int{d.Trial, d.Round}
		found, err := c.Find(ctx, securestore.Query{Match: []map[string]any{{"trial": d.Trial}}})
		require.NoError(t, err)
		require.Len(t, found, 1, "the index matches the document")
		require.NoError(t, s.Close())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var tmp int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			tmp++
		}
	}
	t.Logf("%d trials: %d got as far as a document write, furthest round %d; %d temporary files left by kills", crashTrials, advanced, maxRound, tmp)
}
