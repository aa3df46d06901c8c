package main

import (
	"fmt"
	"runtime/debug"

	"smarthost/relay/dkim"
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
	// The RSA implementation is a build choice (-tags openssl) that changes
	// how many messages a core can sign, so it is part of the version.
	fmt.Fprintf(io.out, "smarthost %s (DKIM RSA signing: %s)\n", v, dkim.RSABackend())
	return nil
}
