package main

import (
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version (or "devel") is printed.
var version = ""

func runVersion(args []string, io stdio) error {
	fs := newFlagSet("version", "version", io)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintln(io.out, "smarthost", v)
	return nil
}
