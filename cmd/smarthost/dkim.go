package main

import (
	"context"
	"flag"
	"fmt"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
)

const dkimSynopsis = `dkim keygen -domain D -selector S [-algo rsa-2048|ed25519] [-dir DIR]
       smarthost dkim record -domain D -selector S -key FILE
       smarthost dkim testkey [-config F]`

// runDKIM dispatches the dkim subcommands.
func runDKIM(args []string, io stdio) error {
	return runSubcommand("dkim", dkimSynopsis, map[string]func([]string, stdio) error{
		"keygen": runDKIMKeygen, "record": runDKIMRecord, "testkey": runDKIMTestkey}, args, io)
}

// runDKIMKeygen is `dkim keygen`: it writes a new key and prints its record.
func runDKIMKeygen(args []string, io stdio) error {
	fs := newFlagSet("dkim keygen", "dkim keygen -domain D -selector S [-algo rsa-2048|ed25519] [-dir DIR]", io)
	domain := fs.String("domain", "", "signing `domain` (d=)")
	selector := fs.String("selector", "", "`selector` (s=), e.g. 2026a")
	algo := fs.String("algo", string(dkim.KindRSA2048), "key `type`: rsa-2048 or ed25519")
	dir := fs.String("dir", "/etc/smarthost/dkim", "key `directory`; the files go in DIR/DOMAIN/")
	if err := parseDKIMFlags(fs, args, io); err != nil {
		return err
	}
	if *domain == "" || *selector == "" || !dkim.Kind(*algo).Valid() {
		fmt.Fprintln(io.err, "smarthost dkim keygen: -domain and -selector are required; -algo is rsa-2048 or ed25519")
		fs.Usage()
		return errUsage
	}
	files, err := dkim.Keygen(dkim.KeygenOptions{Dir: *dir, Domain: *domain, Selector: *selector, Kind: dkim.Kind(*algo)})
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "Wrote %s (mode 0600; the user smarthost runs as must be able to read it)\nWrote %s\n\n", files.PrivateKey, files.RecordFile)
	fmt.Fprint(io.out, dkim.Instructions(*domain, *selector, files.Record))
	return nil
}

// runDKIMRecord is `dkim record`: it prints the record of an existing key.
func runDKIMRecord(args []string, io stdio) error {
	fs := newFlagSet("dkim record", "dkim record -domain D -selector S -key FILE", io)
	domain := fs.String("domain", "", "signing `domain` (d=)")
	selector := fs.String("selector", "", "`selector` (s=)")
	keyFile := fs.String("key", "", "private key `file` (PEM)")
	if err := parseDKIMFlags(fs, args, io); err != nil {
		return err
	}
	if *domain == "" || *selector == "" || *keyFile == "" {
		fmt.Fprintln(io.err, "smarthost dkim record: -domain, -selector and -key are required")
		fs.Usage()
		return errUsage
	}
	key, err := dkim.ReadPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	rec, err := dkim.NewRecord(key.Public())
	if err != nil {
		return err
	}
	fmt.Fprint(io.out, dkim.Instructions(*domain, *selector, rec))
	return nil
}

// runDKIMTestkey is `dkim testkey`: each configured key against its record
// in DNS, looked up through the [dns] section's resolver.
func runDKIMTestkey(args []string, io stdio) error {
	fs := newFlagSet("dkim testkey", "dkim testkey [-config F]", io)
	configPath := configFlag(fs)
	if err := parseDKIMFlags(fs, args, io); err != nil {
		return err
	}
	cfg, _, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	table, err := dkim.Load(cfg.DKIM)
	if err != nil {
		return err
	}
	keys := table.Keys()
	if len(keys) == 0 {
		return &exitError{code: 1, msg: "no keys configured; add a [[dkim.key]] section to " + *configPath}
	}
	r := resolve.New(cfg.DNS.Server, cfg.DNS.Timeout.Duration)
	var problems int
	for _, k := range keys {
		c := dkim.CheckKey(context.Background(), r, k)
		fmt.Fprintln(io.out, c)
		if !c.Status.OK() {
			problems++
		}
	}
	if problems > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d keys need attention", problems, len(keys))}
	}
	return nil
}

// parseDKIMFlags parses a dkim subcommand's flags and refuses positional
// arguments, which none of them takes.
func parseDKIMFlags(fs *flag.FlagSet, args []string, io stdio) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(io.err, "smarthost %s: unexpected argument %q\n", fs.Name(), pos[0])
		fs.Usage()
		return errUsage
	}
	return nil
}
