package main

import (
	"context"
	"fmt"
	"time"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/dnscheck"
	"smarthost/relay/resolve"
)

const dnsSynopsis = "dns check DOMAIN [-config F]"

// dnsCheckTimeout bounds a whole `dns check`; each lookup is bounded by
// dns.timeout as well.
const dnsCheckTimeout = 5 * time.Minute

// runDNS dispatches the dns subcommands.
func runDNS(args []string, io stdio) error {
	return runSubcommand("dns", dnsSynopsis, map[string]func([]string, stdio) error{"check": runDNSCheck}, args, io)
}

// runDNSCheck is `dns check DOMAIN`: the report of relay/dnscheck for
// DOMAIN, as seen from this server (hostname, DKIM keys and resolver of
// the configuration). It exits 1 when the report has an error.
func runDNSCheck(args []string, io stdio) error {
	fs := newFlagSet("dns check", dnsSynopsis, io)
	configPath := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(io.err, "smarthost dns check: give exactly one DOMAIN")
		fs.Usage()
		return errUsage
	}
	cfg, _, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	table, err := dkim.Load(cfg.DKIM)
	if err != nil {
		return err
	}
	r := resolve.New(cfg.DNS.Server, cfg.DNS.Timeout.Duration)
	c := &dnscheck.Checker{Resolver: r, Hostname: cfg.Hostname, Keys: table.Keys(),
		HTTP: dnscheck.PolicyClient(r, cfg.DNS.Timeout.Duration)}
	ctx, cancel := context.WithTimeout(context.Background(), dnsCheckTimeout)
	defer cancel()
	rep, err := c.Check(ctx, pos[0])
	if err != nil {
		return err
	}
	if _, err := rep.WriteTo(io.out); err != nil {
		return err
	}
	if n := rep.Count(dnscheck.LevelError); n > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d of the checks above failed; each ERROR line says how to fix it", rep.Domain, n)}
	}
	return nil
}
