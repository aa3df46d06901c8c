package relay

import (
	"errors"
	"os"
	"strings"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/relay/certs"
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
	if _, err := loadDKIM(cfg); err != nil {
		add("dkim.key", err, "")
	}
	if _, err := auth.LoadUsers(cfg.Auth.UsersFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		add("auth.users_file", err, "fix the line or set the password again with `smarthost user passwd NAME`")
	}
	return problems
}
