package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"smarthost/config"
)

// acmeSource gets certificates from an ACME CA through autocert.
type acmeSource struct {
	manager  *autocert.Manager
	handler  http.Handler    // answers http-01 challenges
	domains  map[string]bool // tls.acme_domains, lower case, no trailing dot
	fallback string          // served when SNI is absent or not in domains
	logger   *slog.Logger

	mu     sync.Mutex
	expiry map[string]time.Time // NotAfter of the last certificate served, per name
}

// newACME prepares autocert without contacting the CA.
func newACME(opts Options) (*acmeSource, error) {
	if opts.StateDir == "" {
		return nil, errors.New("certs: acme needs state_dir for its cache; set state_dir")
	}
	dir := filepath.Join(opts.StateDir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: acme cache: %w; make state_dir writable by the user smarthost runs as", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("certs: acme cache: %w", err)
	}
	// The cache holds the ACME account key and every certificate's private
	// key; autocert writes the files 0600 but never checks the directory.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("certs: acme cache %s is mode %04o but holds private keys; chmod 700 %s", dir, perm, dir)
	}

	a := &acmeSource{
		domains: make(map[string]bool, len(opts.TLS.ACMEDomains)),
		logger:  opts.Logger,
		expiry:  make(map[string]time.Time),
	}
	var names []string
	for _, d := range opts.TLS.ACMEDomains {
		n := normalizeName(d)
		if !a.domains[n] {
			a.domains[n] = true
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("certs: acme needs at least one name in tls.acme_domains")
	}
	a.fallback = names[0]
	if h := normalizeName(opts.Hostname); a.domains[h] {
		a.fallback = h
	} else if h != "" {
		logWarning(a.logger, "", fmt.Sprintf("hostname %q is not in tls.acme_domains; clients that send no SNI get the certificate for %q; add the hostname to acme_domains", h, a.fallback))
	}

	dirURL := opts.TLS.ACMEDirectory
	if dirURL == "" {
		dirURL = autocert.DefaultACMEDirectory
	}
	a.manager = &autocert.Manager{
		// Setting tls.acme_domains is the operator's agreement to the CA's
		// terms, as with certbot --agree-tos.
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(names...),
		Email:      opts.TLS.ACMEEmail,
		Client: &acme.Client{
			DirectoryURL: dirURL,
			UserAgent:    "smarthost",
			HTTPClient:   &http.Client{Transport: challengeFilter{next: http.DefaultTransport}},
		},
	}
	// HTTPHandler is also what tells autocert to use http-01 at all. There
	// is no web site here, so anything but a challenge is 404 rather than
	// autocert's default redirect to https://host:443.
	a.handler = a.manager.HTTPHandler(http.NotFoundHandler())
	return a, nil
}

func (a *acmeSource) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if name := a.serverName(hello.ServerName); name != hello.ServerName {
		h := *hello
		h.ServerName = name
		hello = &h
	}
	cert, err := a.manager.GetCertificate(hello)
	if err != nil {
		return nil, fmt.Errorf("certs: acme certificate for %s: %w", hello.ServerName, err)
	}
	if cert.Leaf != nil {
		a.noteServed(hello.ServerName, cert)
	}
	return cert, nil
}

// noteServed remembers the expiry of a certificate served for name and logs
// when it is new (first use, or renewed by autocert).
func (a *acmeSource) noteServed(name string, cert *tls.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.expiry[name].Equal(cert.Leaf.NotAfter) {
		return
	}
	a.expiry[name] = cert.Leaf.NotAfter
	logLoaded(a.logger, config.TLSFromACME, "", cert.Leaf)
}

// serverName maps the SNI a client sent to a name we have a certificate
// for. Many SMTP clients send no SNI, and a sender doing opportunistic TLS
// is better served by our hostname's certificate than by a failed handshake.
func (a *acmeSource) serverName(sni string) string {
	if n := normalizeName(sni); a.domains[n] {
		return n
	}
	return a.fallback
}

// reload does nothing: autocert renews certificates by itself, 30 days
// before they expire.
func (a *acmeSource) reload() error { return nil }

func (a *acmeSource) notAfter() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first time.Time
	for _, t := range a.expiry {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// normalizeName lower-cases a DNS name and drops a trailing dot.
func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}
