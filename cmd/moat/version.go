package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

func init() {
	register(command{name: "version", summary: "print the moat version", run: runVersion})
}

func runVersion(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "version", "moat version")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "version takes no arguments")
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(std.out, "moat %s\n", v)
	return exitOK
}
