package certs

import (
	"crypto/tls"
	"strings"
	"testing"

	"smarthost/config"
)

// newFileSource serves l from plain files; it fails the test on error.
func newFileSource(t *testing.T, l leaf, hostname string, clock *fakeClock) *Source {
	t.Helper()
	dir := t.TempDir()
	opts := Options{
		TLS: config.TLS{
			CertFile: writeFile(t, dir, "fullchain.pem", l.certPEM),
			KeyFile:  writeFile(t, dir, "privkey.pem", l.keyPEM),
		},
		Hostname: hostname,
	}
	if clock != nil {
		opts.Now = clock.Now
	}
	src, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func TestServerConfig_RefusesOldProtocolsAndWeakSuites(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	addrs := map[keyKind]string{
		keyECDSA: serveTLS(t, newFileSource(t, ca.issue(t, keyECDSA, 90*days, "mail.example.test"), "mail.example.test", nil).ServerConfig()),
		keyRSA:   serveTLS(t, newFileSource(t, ca.issue(t, keyRSA, 90*days, "mail.example.test"), "mail.example.test", nil).ServerConfig()),
	}

	tests := []struct {
		name      string
		cert      keyKind
		client    *tls.Config // nil: Go's defaults
		wantErr   string      // substring of the client's handshake error; "" for success
		wantVer   uint16
		wantSuite uint16
	}{
		{
			name:      "TLS 1.3",
			cert:      keyECDSA,
			wantVer:   tls.VersionTLS13,
			wantSuite: 0, // any TLS 1.3 suite
		},
		{
			name:      "TLS 1.2 ECDHE-ECDSA-AES128-GCM",
			cert:      keyECDSA,
			client:    &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			wantVer:   tls.VersionTLS12,
			wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		},
		{
			name:      "TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305",
			cert:      keyECDSA,
			client:    &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}},
			wantVer:   tls.VersionTLS12,
			wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,
		},
		{
			// What old Postfix and OpenSSL 1.0.x negotiate.
			name:      "TLS 1.2 ECDHE-RSA-AES128-GCM on P-256",
			cert:      keyRSA,
			client:    &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, CurvePreferences: []tls.CurveID{tls.CurveP256}},
			wantVer:   tls.VersionTLS12,
			wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		},
		{
			name:      "TLS 1.2 ECDHE-RSA-AES256-GCM",
			cert:      keyRSA,
			client:    &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
			wantVer:   tls.VersionTLS12,
			wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		},
		{
			name:    "TLS 1.1 refused",
			cert:    keyECDSA,
			client:  &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
			wantErr: "protocol version not supported",
		},
		{
			name:    "TLS 1.0 refused",
			cert:    keyRSA,
			client:  &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			wantErr: "protocol version not supported",
		},
		{
			name: "CBC-only client refused",
			cert: keyRSA,
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
			}},
			wantErr: "handshake failure",
		},
		{
			name:    "RSA key exchange (no forward secrecy) refused",
			cert:    keyRSA,
			client:  &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
			wantErr: "handshake failure",
		},
		{
			name:    "P-384-only client refused",
			cert:    keyECDSA,
			client:  &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP384}},
			wantErr: "handshake failure",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &tls.Config{}
			if tt.client != nil {
				cfg = tt.client.Clone()
			}
			cfg.InsecureSkipVerify = true // the suite, not the chain, is under test
			cs, err := handshake(addrs[tt.cert], cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("handshake error = %v, want one containing %q (negotiated %s %s)", err, tt.wantErr,
						tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake error = %v, want success", err)
			}
			if cs.Version != tt.wantVer {
				t.Errorf("version = %s, want %s", tls.VersionName(cs.Version), tls.VersionName(tt.wantVer))
			}
			if tt.wantSuite != 0 && cs.CipherSuite != tt.wantSuite {
				t.Errorf("cipher suite = %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(tt.wantSuite))
			}
		})
	}
}

func TestServerConfig_OffersOnlyModernSettings(t *testing.T) {
	t.Parallel()
	src := newFileSource(t, newTestCA(t).issue(t, keyECDSA, 90*days, "mail.example.test"), "mail.example.test", nil)
	cfg := src.ServerConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %s, want TLS 1.2", tls.VersionName(cfg.MinVersion))
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("CipherSuites includes %s, want only ECDHE with AES-GCM or ChaCha20-Poly1305", name)
		}
	}
	if len(cfg.NextProtos) != 0 {
		t.Errorf("NextProtos = %q, want none (acme-tls/1 only belongs on port 443)", cfg.NextProtos)
	}
	if cfg.GetCertificate == nil || len(cfg.Certificates) != 0 {
		t.Errorf("certificates must come from GetCertificate only, so reloads reach running listeners")
	}
	// Each listener gets its own config: changing one must not change
	// another.
	cfg.CipherSuites[0] = tls.TLS_RSA_WITH_AES_128_CBC_SHA
	if got := src.ServerConfig().CipherSuites[0]; got == tls.TLS_RSA_WITH_AES_128_CBC_SHA {
		t.Errorf("ServerConfig shares its CipherSuites slice between calls")
	}
}

func TestNew_NoSourceConfigured(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Hostname: "mail.example.test"})
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("New(no [tls]) error = %v, want one naming the keys to set", err)
	}
}
