// Command moat is the operator tool for moat: pins, attestation checks,
// one-time codes, keys, update bundles and token inspection.
//
// Usage:
//
//	moat <command> [subcommand] [flags]
//	moat help <command>
//
// Exit codes: 0 ok, 1 refused (the input was understood and the answer is
// "no": an invalid token, a failed check), 2 usage (bad flags, unreadable
// input).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitRefused = 1
	exitUsage   = 2
)

// stdio is what a command may touch of the outside world, so that tests can
// run commands in-process.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// isTerminal reports whether out is an interactive terminal.
	isTerminal bool
}

// command is one top-level subcommand. Each lives in its own file and adds
// itself to commands in an init function.
type command struct {
	name    string
	summary string
	// run gets the arguments after the command name.
	run func(ctx context.Context, io stdio, args []string) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("moat: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fi, _ := os.Stdout.Stat()
	std := stdio{
		in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv,
		isTerminal: fi != nil && fi.Mode()&os.ModeCharDevice != 0,
	}
	code := run(ctx, std, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, std stdio, args []string) int {
	if len(args) == 0 {
		usage(std.err)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		usage(std.out)
		return exitOK
	case "help":
		if len(args) == 1 {
			usage(std.out)
			return exitOK
		}
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(std.err, "moat: unknown command %q\n", args[1])
			return exitUsage
		}
		return c.run(ctx, std, []string{"--help"})
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(std.err, "moat: unknown command %q\n\n", name)
		usage(std.err)
		return exitUsage
	}
	return c.run(ctx, std, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: moat <command> [subcommand] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'moat <command> --help' for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 refused, 2 usage.")
}

// subcommand is one verb under a top-level command ("token inspect").
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, io stdio, args []string) int
}

// dispatch runs the verb named by args[0] among subs, printing usage for
// help requests and unknown verbs.
func dispatch(ctx context.Context, std stdio, parent string, subs []subcommand, args []string) int {
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: moat %s <subcommand> [flags]\n\nSubcommands:\n", parent)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
		}
	}
	if len(args) == 0 {
		printUsage(std.err)
		return exitUsage
	}
	if isHelp(args[0]) {
		printUsage(std.out)
		return exitOK
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, std, args[1:])
		}
	}
	fmt.Fprintf(std.err, "moat %s: unknown subcommand %q\n\n", parent, args[0])
	printUsage(std.err)
	return exitUsage
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// newFlags returns a flag set that reports errors instead of exiting, and
// prints its usage to the command's stderr (stdout for --help).
func newFlags(std stdio, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. It returns ok=false with the exit code
// to use when parsing ended the command (help requested or bad flags).
// Positional arguments are left in fs.Args(); flags may follow them.
func parseFlags(std stdio, fs *flag.FlagSet, args []string) (int, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(std.out)
			fs.Usage()
			return exitOK, false
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	_ = fs.Parse(append([]string{"--"}, positional...))
	return exitOK, true
}

// usageErrorf prints a usage error and returns exitUsage.
func usageErrorf(std stdio, format string, a ...any) int {
	fmt.Fprintf(std.err, "moat: "+format+"\n", a...)
	return exitUsage
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
