package main

import (
	"errors"
	"fmt"

	"smarthost/config"
	"smarthost/relay"
)

// runCheck validates a configuration and what it points at, printing every
// problem (not just the first); exit 1 when any is an error.
func runCheck(args []string, io stdio) error {
	fs := newFlagSet("check", "check [-config FILE]", io)
	path := configFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, warnings, err := config.Load(*path)
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		for _, p := range cerr.Problems {
			fmt.Fprintln(io.out, p)
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) in %s", countErrors(cerr.Problems), *path)}
	case err != nil:
		return &exitError{code: 1, msg: err.Error()}
	}
	problems := append(warnings, relay.Check(cfg)...)
	for _, p := range problems {
		fmt.Fprintln(io.out, p)
	}
	if n := countErrors(problems); n > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) in %s", n, *path)}
	}
	fmt.Fprintf(io.out, "%s: OK\n", *path)
	return nil
}

func countErrors(ps []config.Problem) int {
	n := 0
	for _, p := range ps {
		if !p.Warning {
			n++
		}
	}
	return n
}
