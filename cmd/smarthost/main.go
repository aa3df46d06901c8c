package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdio stdio) error
}

// stdio carries the process's standard streams, so subcommands can be
// tested without touching the real ones.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	// inIsTerminal reports whether in is an interactive terminal.
	inIsTerminal bool
}

var commands = map[string]command{
	"serve":   {"run the relay", runServe},
	"demo":    {"run the whole path on loopback with no setup; exit 0 when every step passed", runDemo},
	"check":   {"validate the configuration, keys and certificates", runCheck},
	"user":    {"add|passwd|del|list users in the users file", runUser},
	"dkim":    {"keygen|record|testkey: DKIM key tooling", runDKIM},
	"import":  {"import postfix: translate a Postfix + OpenDKIM setup into smarthost.toml", runImport},
	"dns":     {"check DOMAIN: MX, SPF, DKIM, DMARC, PTR and MTA-STS records, with fixes", runDNS},
	"queue":   {"list|show|flush|delete|hold|release queued mail", runQueue},
	"version": {"print the version", runVersion},
}

// runSubcommand runs the subcommand of `smarthost NAME` that args[0]
// names, printing synopsis when there is none or it is unknown.
func runSubcommand(name, synopsis string, subs map[string]func([]string, stdio) error, args []string, io stdio) error {
	fs := newFlagSet(name, synopsis, io)
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	if sub, ok := subs[args[0]]; ok {
		return sub(args[1:], io)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fs.Usage()
		return nil
	}
	fmt.Fprintf(io.err, "smarthost %s: unknown subcommand %q\n", name, args[0])
	fs.Usage()
	return errUsage
}

// errUsage marks an error already explained by the flag set's usage output.
var errUsage = errors.New("usage")

// exitError carries a specific exit status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, inIsTerminal: isTerminal(os.Stdin)}))
}

func run(args []string, io stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(io.err)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(io.err, "smarthost: unknown command %q\n", args[0])
		usage(io.err)
		return 2
	}
	err := cmd.run(args[1:], io)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(io.err, "smarthost "+args[0]+": "+ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintln(io.err, "smarthost "+args[0]+": "+err.Error())
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: smarthost COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'smarthost COMMAND -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, io stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		fmt.Fprintf(io.err, "usage: smarthost %s\n", synopsis)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(io.err, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses flags that may come before, between or after the
// positional arguments ("user add alice -config F" and "user add -config F
// alice" both work) and returns the positional arguments. "--" ends flag
// parsing.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// defaultConfigPath is where serve and friends look without -config.
const defaultConfigPath = "/etc/smarthost/smarthost.toml"

// configFlag adds the common -config flag.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfigPath, "configuration `file`")
}

// isTerminal reports whether f is a character device (a terminal), so a
// password can be read without echo only when someone is typing.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
