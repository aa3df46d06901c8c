package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"strings"
	"testing"

	"smarthost/config"
)

func TestSelfSigned_VerifiesAgainstItsPool(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	src, err := New(Options{TLS: config.TLS{SelfSigned: true}, Hostname: "mail.example.test", Now: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr := serveTLS(t, src.ServerConfig())
	tests := []struct {
		serverName string
		wantErr    bool
	}{
		{"mail.example.test", false},
		{"localhost", false},
		{"127.0.0.1", false},
		{"::1", false},
		{"other.example.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			t.Parallel()
			_, err := handshake(addr, &tls.Config{RootCAs: src.CertPool(), ServerName: tt.serverName})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("handshake for %q: error = %v, want error %v", tt.serverName, err, tt.wantErr)
			}
		})
	}
	t.Run("without the pool", func(t *testing.T) {
		t.Parallel()
		if _, err := handshake(addr, &tls.Config{ServerName: "localhost"}); err == nil {
			t.Errorf("handshake with system roots succeeded, want a verification error")
		}
	})
}

func TestSelfSigned_Certificate(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	src, err := New(Options{TLS: config.TLS{SelfSigned: true}, Hostname: "mail.example.test", Now: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cert, err := src.Certificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("Certificate: %v", err)
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", cert.PrivateKey)
	}
	if got, want := src.NotAfter(), clock.Now().Add(SelfSignedValidity); !got.Equal(want) {
		t.Errorf("NotAfter() = %v, want %v", got, want)
	}
	if err := src.Reload(); err != nil {
		t.Errorf("Reload() = %v, want nil", err)
	}
	again, _ := src.Certificate(&tls.ClientHelloInfo{})
	if again != cert {
		t.Errorf("certificate changed after Reload; clients holding CertPool would stop verifying")
	}
}

func TestSelfSigned_NeedsHostname(t *testing.T) {
	t.Parallel()
	_, err := New(Options{TLS: config.TLS{SelfSigned: true}})
	if err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Fatalf("New(self_signed, no hostname) error = %v, want one asking for hostname", err)
	}
}

func TestCertPool_OnlyForSelfSigned(t *testing.T) {
	t.Parallel()
	src := newFileSource(t, newTestCA(t).issue(t, keyECDSA, 90*days, "mail.example.test"), "mail.example.test", nil)
	if src.CertPool() != nil {
		t.Errorf("CertPool() for files is non-nil, want nil")
	}
	if src.HTTPHandler() != nil {
		t.Errorf("HTTPHandler() for files is non-nil, want nil")
	}
}
