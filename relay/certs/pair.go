package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// loadPair reads a PEM certificate chain and its private key and checks that
// they belong together. Errors name the file and say how to fix it, because
// the operator reads them in `smarthost check` or the journal.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := readPEMFile("tls.cert_file", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEMFile("tls.key_file", keyFile)
	if err != nil {
		return nil, err
	}
	chain, err := parseChain(certFile, certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyFile, keyPEM)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(chain[0].PublicKey, key.Public()) {
		for i, c := range chain[1:] {
			if samePublicKey(c.PublicKey, key.Public()) {
				return nil, fmt.Errorf("certs: %s: the certificate for %s is number %d in the file; put the server certificate first, then its intermediates (as in fullchain.pem)", certFile, keyFile, i+2)
			}
		}
		return nil, fmt.Errorf("certs: %s does not match the certificate in %s; set tls.key_file to that certificate's key (privkey.pem next to fullchain.pem)", keyFile, certFile)
	}
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: chain[0]}, nil
}

// readPEMFile reads the file configured as key, with a fix for the usual
// failures in the error.
func readPEMFile(key, name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("certs: %s: %w; check the path (with certbot, /etc/letsencrypt/live/NAME/)", key, err)
	case errors.Is(err, fs.ErrPermission):
		// certbot makes live/ and archive/ readable by root only.
		return nil, fmt.Errorf("certs: %s: %w; make it readable by the user smarthost runs as (for certbot: group smarthost on live/ and archive/, or copy the files in a deploy hook)", key, err)
	case err != nil:
		return nil, fmt.Errorf("certs: %s: %w", key, err)
	}
	return data, nil
}

// parseChain returns the certificates in a PEM file, leaf first.
func parseChain(file string, data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	sawKey := false
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certs: %s: certificate %d: %w; the file is damaged, get it again from the CA", file, len(chain)+1, err)
			}
			chain = append(chain, c)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			sawKey = true
		}
	}
	switch {
	case len(chain) > 0:
		return chain, nil
	case sawKey:
		return nil, fmt.Errorf("certs: %s holds a private key, not a certificate; tls.cert_file and tls.key_file look swapped", file)
	default:
		return nil, fmt.Errorf("certs: %s: no PEM certificate found; tls.cert_file must be a PEM certificate chain such as Let's Encrypt's fullchain.pem", file)
	}
}

// parseKey returns the first private key in a PEM file.
func parseKey(file string, data []byte) (crypto.Signer, error) {
	sawCert := false
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			sawCert = true
			continue
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("certs: %s: the private key is encrypted; store it unencrypted (openssl pkey -in KEY -out KEY.new) and protect it with file permissions", file)
		}
		key, err := parsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: %w; tls.key_file must be a PEM private key such as privkey.pem", file, err)
		}
		return key, nil
	}
	if sawCert {
		return nil, fmt.Errorf("certs: %s holds a certificate, not a private key; tls.cert_file and tls.key_file look swapped", file)
	}
	return nil, fmt.Errorf("certs: %s: no PEM private key found; tls.key_file must be a PEM private key such as Let's Encrypt's privkey.pem", file)
}

// parsePrivateKey decodes the key formats openssl and certbot write: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") and SEC 1 ("EC PRIVATE KEY").
func parsePrivateKey(b *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(b.Type), err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// pairWarnings lists what is legal but probably wrong about a loaded pair:
// things that make clients fail verification while the server itself works.
func pairWarnings(cert *tls.Certificate, hostname string, now time.Time) []string {
	leaf := cert.Leaf
	var w []string
	if now.After(leaf.NotAfter) {
		w = append(w, fmt.Sprintf("certificate expired at %s; renew it (certbot renew)", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	if now.Before(leaf.NotBefore) {
		w = append(w, fmt.Sprintf("certificate is not valid before %s; check the system clock", leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if len(cert.Certificate) == 1 && !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		// Let's Encrypt's cert.pem is the leaf alone; clients without the
		// intermediate cannot build a chain.
		w = append(w, "the file holds no intermediate certificate; use fullchain.pem, not cert.pem")
	}
	if hostname != "" {
		if err := leaf.VerifyHostname(hostname); err != nil {
			w = append(w, fmt.Sprintf("certificate does not cover hostname %q (it names %s); clients that check it will fail", hostname, strings.Join(certNames(leaf), ", ")))
		}
	}
	return w
}

// certNames lists the DNS names and IP addresses a certificate is valid for.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}
