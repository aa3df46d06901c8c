package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"smarthost/config"
)

// CheckInterval is the longest time between two checks of the certificate
// files for changes. A check is two stat calls, so this only bounds how stale
// a renewed certificate may be.
const CheckInterval = 5 * time.Second

// cipherSuites returns the TLS 1.2 suites offered: ECDHE for forward secrecy
// and AEAD ciphers only, as in Mozilla's "intermediate" profile. TLS 1.3
// suites are not configurable in crypto/tls and are all AEAD.
func cipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
	}
}

// curves returns the key exchanges offered. X25519MLKEM768 is the
// post-quantum hybrid Go prefers by default for TLS 1.3 (mail is kept for
// years, so "record now, decrypt later" matters); peers without it use X25519
// or P-256.
func curves() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
}

// Options configures [New].
type Options struct {
	// TLS is the [tls] section; TLS.Source() picks files, ACME or
	// self-signed.
	TLS config.TLS
	// Hostname is the server's name (config "hostname"): the self-signed
	// certificate's name and, with ACME, the certificate served to clients
	// that send no SNI. With files it is only used to warn when the
	// certificate does not cover it.
	Hostname string
	// StateDir is config "state_dir"; the ACME cache is StateDir/acme.
	StateDir string
	// Logger receives certificate loads, reload failures and warnings.
	// Nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. It paces file checks and sets
	// the self-signed certificate's validity.
	Now func() time.Time
}

// provider is one kind of certificate source.
type provider interface {
	certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	reload() error
	notAfter() time.Time
}

// Source supplies listener certificates. It is safe for concurrent use; one
// Source serves every listener.
type Source struct {
	p    provider
	acme *acmeSource    // non-nil only for ACME
	pool *x509.CertPool // non-nil only for self-signed
}

// New builds the Source that opts.TLS selects. For files it loads and checks
// the pair now and returns an error naming the file and the fix if it is
// unusable; for ACME it prepares the cache directory (StateDir/acme, mode
// 0700) without contacting the CA; for self-signed it generates the
// certificate in memory.
func New(opts Options) (*Source, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch opts.TLS.Source() {
	case config.TLSFromFiles:
		f, err := newFiles(opts)
		if err != nil {
			return nil, err
		}
		return &Source{p: f}, nil
	case config.TLSFromACME:
		a, err := newACME(opts)
		if err != nil {
			return nil, err
		}
		return &Source{p: a, acme: a}, nil
	case config.TLSSelfSigned:
		s, err := newSelfSigned(opts)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AddCert(s.cert.Leaf)
		return &Source{p: s, pool: pool}, nil
	}
	return nil, errors.New("certs: no certificate source configured; set tls.cert_file and tls.key_file, tls.acme_domains, or tls.self_signed = true for testing")
}

// ServerConfig returns a new TLS configuration for a listener: TLS 1.2 or
// later, ECDHE with AEAD ciphers only, X25519 (with its ML-KEM hybrid) and
// P-256, and certificates from [Source.Certificate] on every handshake, so
// reloads reach running listeners. Callers may adjust the result (for
// example set ClientAuth) but should not replace GetCertificate.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     cipherSuites(),
		CurvePreferences: curves(),
		GetCertificate:   s.Certificate,
	}
}

// Certificate returns the certificate for a handshake; it has the signature
// of tls.Config.GetCertificate. With files it first checks, at most once per
// [CheckInterval], whether the files changed. With ACME it may block while a
// certificate is issued.
func (s *Source) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.p.certificate(hello)
}

// Reload re-reads the certificate files now, for SIGHUP. If the new pair is
// unusable it returns the error and the old pair stays in service. For ACME
// (which renews by itself) and self-signed certificates it does nothing.
// Reload does not pick up changed [tls] settings: build a new Source for
// those.
func (s *Source) Reload() error {
	return s.p.reload()
}

// NotAfter returns when the certificate being served expires, for metrics
// and `smarthost check`. With files it checks for changed files first, like
// a handshake. With ACME it is the earliest expiry among the certificates
// served so far, and the zero time before the first handshake.
func (s *Source) NotAfter() time.Time {
	return s.p.notAfter()
}

// CertPool returns a pool holding the self-signed certificate, so that a
// client (the demo) can verify this server for the hostname, "localhost",
// 127.0.0.1 or ::1. It returns nil for other sources, whose certificates
// chain to public roots.
func (s *Source) CertPool() *x509.CertPool {
	return s.pool
}

// HTTPHandler returns the handler answering ACME http-01 challenges under
// /.well-known/acme-challenge/ (404 for everything else), or nil when the
// Source does not use ACME. [Source.ServeChallenges] serves it; use this
// only to mount it in an HTTP server of your own on port 80.
func (s *Source) HTTPHandler() http.Handler {
	if s.acme == nil {
		return nil
	}
	return s.acme.handler
}

// ServeChallenges answers ACME http-01 challenges on ln (open it on
// tls.acme_http_address, port 80 as the CA connects there) until ctx is
// done, then shuts down and returns nil. It returns an error if the Source
// does not use ACME or serving fails. ln is closed on return.
func (s *Source) ServeChallenges(ctx context.Context, ln net.Listener) error {
	if s.acme == nil {
		ln.Close()
		return errors.New("certs: http-01 challenges are only served with tls.acme_domains")
	}
	srv := &http.Server{
		Handler: s.acme.handler,
		// The CA's validation requests are small and quick; anything slow
		// is not the CA.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.acme.logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("certs: acme http-01 on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}
