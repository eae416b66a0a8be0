package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/moatsec/moat/securestore"
)

func init() {
	register(command{name: "store", summary: "create and use an encrypted directory store", run: runStore})
}

var storeSubcommands = []subcommand{
	{name: "init", summary: "create an encrypted store in a directory", run: runStoreInit},
	{name: "put", summary: "store the value read from stdin (or --in) at a key", run: runStorePut},
	{name: "get", summary: "write the value at a key to stdout", run: runStoreGet},
	{name: "list", summary: "list the keys", run: runStoreList},
	{name: "passwd", summary: "change the store's passcode", run: runStorePasswd},
	{name: "keygen", summary: "print a new random sealer key (ID:BASE64) for servers", run: runStoreKeygen},
}

func runStore(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "store", storeSubcommands, args)
}

// promptPasscode reads a passcode from the terminal without echo. It is a
// variable so that tests can stand in for the terminal.
var promptPasscode = func(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err == nil {
		defer tty.Close()
		fmt.Fprint(tty, prompt)
		pc, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return pc, err
	}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) { // Windows has no /dev/tty
		fmt.Fprint(os.Stderr, prompt)
		pc, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return pc, err
	}
	return nil, errors.New("no terminal to ask for the passcode on: name an environment variable with --passcode-env")
}

// storeFlags are the flags every store subcommand shares.
type storeFlags struct {
	dir         *string
	passcodeEnv *string
}

func addStoreFlags(std stdio, name, usageLine string) (*flag.FlagSet, storeFlags) {
	fs := newFlags(std, "store "+name, "moat store "+name+" --dir DIR "+usageLine)
	return fs, storeFlags{
		dir:         fs.String("dir", "", "the store's directory (required)"),
		passcodeEnv: fs.String("passcode-env", "", "read the passcode from this environment variable instead of the terminal"),
	}
}

// passcode returns the passcode from the environment variable named by
// envName, or from a terminal prompt (twice when confirm is set).
func passcode(std stdio, envName, prompt string, confirm bool) ([]byte, error) {
	if envName != "" {
		v := std.getenv(envName)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty or unset", envName)
		}
		return []byte(v), nil
	}
	pc, err := promptPasscode(prompt + ": ")
	if err != nil {
		return nil, err
	}
	if len(pc) == 0 {
		return nil, errors.New("empty passcode")
	}
	if confirm {
		again, err := promptPasscode("Repeat to confirm: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pc, again) {
			return nil, errors.New("the passcodes do not match")
		}
	}
	return pc, nil
}

// storeError reports a store error: refused for what the input caused
// (wrong passcode, missing key, damaged data), and also for I/O.
func storeError(std stdio, err error) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, "moat/") { // the library's errors name their package
		msg = "moat store: " + msg
	}
	fmt.Fprintln(std.err, msg)
	return exitRefused
}

// openStore opens the directory store named by the flags.
func openStore(ctx context.Context, std stdio, f storeFlags) (*securestore.Store, int) {
	if *f.dir == "" {
		return nil, usageErrorf(std, "store: --dir is required")
	}
	if _, err := os.Stat(*f.dir); err != nil {
		return nil, storeError(std, fmt.Errorf("no store at %s (run 'moat store init')", *f.dir))
	}
	b, err := securestore.NewDirBackend(*f.dir)
	if err != nil {
		return nil, storeError(std, err)
	}
	pc, err := passcode(std, *f.passcodeEnv, "Passcode", false)
	if err != nil {
		return nil, storeError(std, err)
	}
	s, err := securestore.Open(ctx, b, securestore.Passcode(pc))
	clear(pc)
	if err != nil {
		return nil, storeError(std, err)
	}
	return s, exitOK
}

func runStoreInit(ctx context.Context, std stdio, args []string) int {
	fs, f := addStoreFlags(std, "init", "[--aead NAME] [--argon2-time N] [--argon2-memory MiB] [--argon2-threads N]")
	aead := fs.String("aead", "aes-256-gcm", "record cipher: aes-256-gcm or xchacha20-poly1305")
	t := fs.Uint("argon2-time", 0, "Argon2id passes (0: the library default, 3)")
	m := fs.Uint("argon2-memory", 0, "Argon2id memory in MiB (0: the library default, 64)")
	p := fs.Uint("argon2-threads", 0, "Argon2id threads (0: the library default, 4)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "store init takes no arguments")
	}
	if *f.dir == "" {
		return usageErrorf(std, "store: --dir is required")
	}
	a, err := securestore.ParseAEAD(*aead)
	if err != nil {
		return usageErrorf(std, "store init: %v", err)
	}
	if *t > 1<<16 || *m > 1<<16 || *p > 255 {
		return usageErrorf(std, "store init: Argon2id parameters out of range")
	}
	cfg := securestore.Config{AEAD: a, Argon2: securestore.Argon2Params{Time: uint32(*t), MemoryKiB: uint32(*m) << 10, Threads: uint8(*p)}}
	pc, err := passcode(std, *f.passcodeEnv, "New passcode", true)
	if err != nil {
		return storeError(std, err)
	}
	defer clear(pc)
	b, err := securestore.NewDirBackend(*f.dir)
	if err != nil {
		return storeError(std, err)
	}
	s, err := securestore.Create(ctx, b, securestore.Passcode(pc), cfg)
	if err != nil {
		return storeError(std, err)
	}
	defer s.Close()
	ki := s.KeyInfo()
	fmt.Fprintf(std.out, "created store in %s (%s, Argon2id t=%d m=%dMiB p=%d)\n", *f.dir, ki.AEAD, ki.Argon2.Time, ki.Argon2.MemoryKiB>>10, ki.Argon2.Threads)
	return exitOK
}

// runOnStore parses a subcommand's flags (extra adds its own), checks
// that it got nargs arguments, opens the store and runs fn on it.
func runOnStore(ctx context.Context, std stdio, args []string, name, usageLine string, nargs int,
	extra func(*flag.FlagSet), fn func(s *securestore.Store, args []string) int) int {
	fs, f := addStoreFlags(std, name, usageLine)
	extra(fs)
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != nargs {
		return usageErrorf(std, "store %s: %s", name, map[int]string{0: "takes no arguments", 1: "takes one key"}[nargs])
	}
	s, code := openStore(ctx, std, f)
	if s == nil {
		return code
	}
	defer s.Close()
	return fn(s, fs.Args())
}

func runStorePut(ctx context.Context, std stdio, args []string) int {
	var in *string
	return runOnStore(ctx, std, args, "put", "[--in FILE] KEY", 1, func(fs *flag.FlagSet) {
		in = fs.String("in", "", "read the value from this file instead of stdin")
	}, func(s *securestore.Store, args []string) int {
		var r io.Reader = std.in
		if *in != "" {
			file, err := os.Open(*in)
			if err != nil {
				return usageErrorf(std, "store put: %v", err)
			}
			defer file.Close()
			r = file
		}
		value, err := io.ReadAll(io.LimitReader(r, securestore.MaxValueSize+1))
		if err != nil {
			return usageErrorf(std, "store put: reading the value: %v", err)
		}
		if err := s.Put(ctx, args[0], value); err != nil {
			return storeError(std, err)
		}
		return exitOK
	})
}

func runStoreGet(ctx context.Context, std stdio, args []string) int {
	return runOnStore(ctx, std, args, "get", "KEY", 1, func(*flag.FlagSet) {}, func(s *securestore.Store, args []string) int {
		v, err := s.Get(ctx, args[0])
		if err == nil {
			_, err = std.out.Write(v)
		}
		if err != nil {
			return storeError(std, err)
		}
		return exitOK
	})
}

func runStoreList(ctx context.Context, std stdio, args []string) int {
	var prefix *string
	return runOnStore(ctx, std, args, "list", "[--prefix P]", 0, func(fs *flag.FlagSet) {
		prefix = fs.String("prefix", "", "list only keys that start with this")
	}, func(s *securestore.Store, _ []string) int {
		keys, err := s.List(ctx, *prefix)
		if err != nil {
			return storeError(std, err)
		}
		for _, k := range keys {
			fmt.Fprintf(std.out, "%q\n", k)
		}
		return exitOK
	})
}

func runStorePasswd(ctx context.Context, std stdio, args []string) int {
	fs, f := addStoreFlags(std, "passwd", "[--new-passcode-env NAME]")
	newEnv := fs.String("new-passcode-env", "", "read the new passcode from this environment variable instead of the terminal")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "store passwd takes no arguments")
	}
	if *f.dir == "" {
		return usageErrorf(std, "store: --dir is required")
	}
	if _, err := os.Stat(*f.dir); err != nil { // NewDirBackend would create it
		return storeError(std, fmt.Errorf("no store at %s (run 'moat store init')", *f.dir))
	}
	b, err := securestore.NewDirBackend(*f.dir)
	if err != nil {
		return storeError(std, err)
	}
	old, err := passcode(std, *f.passcodeEnv, "Current passcode", false)
	if err != nil {
		return storeError(std, err)
	}
	defer clear(old)
	s, err := securestore.Open(ctx, b, securestore.Passcode(old))
	if err != nil {
		return storeError(std, err)
	}
	defer s.Close()
	next, err := passcode(std, *newEnv, "New passcode", true)
	if err != nil {
		return storeError(std, err)
	}
	defer clear(next)
	if err := s.ChangePasscode(ctx, old, next); err != nil {
		return storeError(std, err)
	}
	fmt.Fprintln(std.out, "passcode changed")
	return exitOK
}

func runStoreKeygen(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "store keygen", "moat store keygen --id N")
	id := fs.Uint("id", 0, "the key's id, above 0 and unique among the server's sealer keys (required)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *id == 0 || *id > 1<<32-1 {
		return usageErrorf(std, "store keygen: --id N with N from 1 to 4294967295, and no arguments")
	}
	fmt.Fprintln(std.out, securestore.FormatSealerKeys(securestore.GenerateSealerKey(uint32(*id))))
	return exitOK
}
