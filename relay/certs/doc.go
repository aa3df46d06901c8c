// Package certs owns where listener certificates come from and the TLS
// settings every listener uses: a certificate/key file pair (Let's Encrypt's
// fullchain.pem and privkey.pem), ACME through autocert, or a throw-away
// self-signed certificate for development and the demo.
//
// It must not open SMTP listeners, read the configuration file or decide
// anything about sessions: relay wiring builds a [Source] with [New], hands
// [Source.ServerConfig] to every TLS listener, calls [Source.Reload] on
// SIGHUP, and, for ACME, serves [Source.ServeChallenges] on
// tls.acme_http_address.
//
// Invariants:
//
//   - Every listener config has MinVersion TLS 1.2 and, for TLS 1.2, only
//     ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305).
//   - Certificates are chosen per handshake through GetCertificate, so a new
//     certificate takes effect on running listeners without a restart.
//   - A certificate pair that fails to load never replaces a working one:
//     the old pair is served and the failure is logged (or returned, for
//     [Source.Reload]).
//   - New never contacts the network; ACME issuance starts at the first
//     handshake that needs a certificate.
//
// # Files and reloading
//
// certbot renews by writing new files under archive/ and then replacing the
// symlinks in live/, one at a time. The pair is stat'ed through the symlinks
// (device, inode, size and mtime of both targets) at most once every
// [CheckInterval], from the handshake path and from [Source.NotAfter]. The
// handshake path was chosen over a ticker goroutine: it needs no goroutine
// and no Close, checks happen exactly when a certificate is about to be used
// (or its expiry reported to metrics), and tests drive it with an injected
// clock instead of sleeping. The cost is that a broken renewal on an idle
// server is noticed at the next handshake or metrics scrape, not at once.
//
// A changed pair that fails to load is reported only when it fails again at
// the next check with the files unchanged, so catching certbot between
// replacing privkey.pem and fullchain.pem (or a cp half-way through) does not
// log a false alarm; the old pair keeps being served throughout.
//
// # ACME
//
// autocert answers tls-alpn-01 (which needs the CA to reach port 443) and
// http-01 (port 80). An SMTP server owns neither port 443 nor a web site, so
// only http-01 is used: [Source.ServeChallenges] answers it, acme-tls/1 is
// never put in NextProtos, and tls-alpn-01 challenges are removed from the
// CA's answers before autocert sees them, because autocert always tries
// tls-alpn-01 first and would otherwise fail one validation per issuance.
// Many SMTP clients send no SNI, so a handshake without SNI, or with a name
// outside tls.acme_domains, gets the certificate for the hostname (or the
// first ACME domain when the hostname is not one of them).
//
// # Compatibility
//
// TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256 is what old Postfix and OpenSSL
// 1.0.1+ peers negotiate; TLS 1.0/1.1 and CBC-only clients are refused, as
// the design requires "TLS ≥ 1.2 on every listener". On port 25 such a sender
// usually retries without STARTTLS, so mail still arrives, unencrypted.
package certs
