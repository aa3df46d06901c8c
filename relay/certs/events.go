package certs

import (
	"crypto/x509"
	"log/slog"
	"strings"
	"time"

	"smarthost/config"
	"smarthost/queue/mlog"
)

// Log messages of this package. They are not message events, so they are
// not in mlog; they are listed here so the vocabulary is in one place.
const (
	msgLoaded       = "tls_certificate_loaded"        // a pair was loaded at start, by Reload or after a change
	msgReloadFailed = "tls_certificate_reload_failed" // changed files failed to load; the old pair is served
	msgWarning      = "tls_certificate_warning"       // a usable pair that clients may reject
)

// Attribute keys of this package, kept out of mlog because no other package
// logs certificates; move them there when one does.
const (
	keySource   = "source"    // files, acme or self_signed
	keyCertFile = "cert_file" // the configured certificate file
	keyKeyFile  = "key_file"  // the configured key file
	keyNames    = "names"     // names a certificate is valid for
	keyNotAfter = "not_after" // certificate expiry (RFC 3339)
	keyProblem  = "problem"   // what is wrong, with the fix
)

// logLoaded records that leaf, from src, is now being served. certFile is
// "" unless src is files.
func logLoaded(l *slog.Logger, src config.TLSSource, certFile string, leaf *x509.Certificate) {
	attrs := []any{keySource, string(src)}
	if certFile != "" {
		attrs = append(attrs, keyCertFile, certFile)
	}
	attrs = append(attrs,
		keyNames, strings.Join(certNames(leaf), ","),
		keyNotAfter, leaf.NotAfter.UTC().Format(time.RFC3339))
	l.Info(msgLoaded, attrs...)
}

// logReloadFailed records that changed files failed to load while serving
// is still the certificate in service.
func logReloadFailed(l *slog.Logger, certFile, keyFile string, err error, serving *x509.Certificate) {
	l.Error(msgReloadFailed,
		keyCertFile, certFile,
		keyKeyFile, keyFile,
		mlog.Error, err.Error(),
		keyNotAfter, serving.NotAfter.UTC().Format(time.RFC3339))
}

// logWarning records a problem with a usable certificate. certFile is "" when
// the certificate does not come from files.
func logWarning(l *slog.Logger, certFile, problem string) {
	if certFile == "" {
		l.Warn(msgWarning, keyProblem, problem)
		return
	}
	l.Warn(msgWarning, keyCertFile, certFile, keyProblem, problem)
}
