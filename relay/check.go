package relay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/relay/certs"
	"smarthost/relay/dkim"
	"smarthost/relay/recipients"
)

// Check loads what a valid configuration points at — the certificate and
// key, the DKIM keys, the users file — without opening listeners or the
// spool, and returns every problem in the same form as config.Load. It is
// the second half of `smarthost check`.
func Check(cfg *config.Config) []config.Problem {
	var problems []config.Problem
	add := func(key string, err error, fix string) {
		for _, line := range strings.Split(err.Error(), "\n") {
			problems = append(problems, cfg.Problem(key, line, fix))
		}
	}
	if needsCertificate(cfg) && cfg.TLS.Source() == config.TLSFromFiles {
		if _, err := certs.New(certs.Options{TLS: cfg.TLS, Hostname: cfg.Hostname, StateDir: cfg.StateDir}); err != nil {
			add("tls.cert_file", err, "")
		}
	}
	// One key at a time, so that each problem names its own key and line
	// rather than "dkim.key" at the first [[dkim.key]].
	for i, k := range cfg.DKIM.Keys {
		one := config.DKIM{Canonicalization: cfg.DKIM.Canonicalization, Keys: []config.DKIMKey{k}}
		if _, err := dkim.Load(one); err != nil {
			add(fmt.Sprintf("dkim.key[%d].private_key", i), err, "")
		}
	}
	if _, err := recipients.NewTable(recipients.TableSource{Entries: cfg.RelayRecipients, File: cfg.RelayRecipientsFile}); err != nil {
		add("relay_recipients_file", err, "fix the entry: one address or @domain per line")
	}
	if _, err := auth.LoadUsers(cfg.Auth.UsersFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		add("auth.users_file", err, "fix the line or set the password again with `smarthost user passwd NAME`")
	}
	return problems
}
