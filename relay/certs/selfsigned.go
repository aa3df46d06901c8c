package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"smarthost/config"
)

// SelfSignedValidity is how long a self-signed certificate is valid. It is
// short because it is made afresh at every start and exists for development
// and the demo only.
const SelfSignedValidity = 7 * 24 * time.Hour

// selfSigned serves one in-memory self-signed certificate.
type selfSigned struct {
	cert *tls.Certificate
}

func newSelfSigned(opts Options) (*selfSigned, error) {
	if opts.Hostname == "" {
		return nil, errors.New("certs: a self-signed certificate needs a hostname; set hostname")
	}
	cert, err := makeSelfSigned(opts.Hostname, opts.Now())
	if err != nil {
		return nil, err
	}
	logLoaded(opts.Logger, config.TLSSelfSigned, "", cert.Leaf)
	return &selfSigned{cert: cert}, nil
}

func (s *selfSigned) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

// reload does nothing: a new certificate would not match the pool clients
// were given.
func (s *selfSigned) reload() error { return nil }

func (s *selfSigned) notAfter() time.Time { return s.cert.Leaf.NotAfter }

// makeSelfSigned creates an ECDSA P-256 certificate for hostname, localhost,
// 127.0.0.1 and ::1, valid from an hour before now (for clock skew between
// the demo's processes) for SelfSignedValidity.
func makeSelfSigned(hostname string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: self-signed key: %w", err)
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: self-signed serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"smarthost self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if hostname != "localhost" {
		tmpl.DNSNames = append([]string{hostname}, tmpl.DNSNames...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: self-signed certificate for %s: %w", hostname, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: self-signed certificate for %s: %w", hostname, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
