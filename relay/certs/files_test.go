package certs

import (
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smarthost/config"
)

func TestNew_FilePairErrorsNameFileAndFix(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	a := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	b := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	caFirst := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})...)

	tests := []struct {
		name     string
		certPEM  []byte // nil: the file does not exist
		keyPEM   []byte
		wantCert bool // the error names the certificate file
		wantKey  bool // the error names the key file
		want     []string
	}{
		{name: "certificate file missing", certPEM: nil, keyPEM: a.keyPEM, wantCert: true, want: []string{"tls.cert_file", "no such file", "check the path"}},
		{name: "key file missing", certPEM: a.certPEM, keyPEM: nil, wantKey: true, want: []string{"tls.key_file", "no such file", "check the path"}},
		{name: "key does not match certificate", certPEM: a.certPEM, keyPEM: b.keyPEM, wantCert: true, wantKey: true, want: []string{"does not match the certificate", "set tls.key_file"}},
		{name: "files swapped", certPEM: a.keyPEM, keyPEM: a.certPEM, wantCert: true, want: []string{"holds a private key, not a certificate", "look swapped"}},
		{name: "server certificate not first", certPEM: caFirst, keyPEM: a.keyPEM, wantCert: true, want: []string{"is number 2", "put the server certificate first"}},
		{name: "certificate file not PEM", certPEM: []byte("hello\n"), keyPEM: a.keyPEM, wantCert: true, want: []string{"no PEM certificate found", "fullchain.pem"}},
		{name: "key file not PEM", certPEM: a.certPEM, keyPEM: []byte("hello\n"), wantKey: true, want: []string{"no PEM private key found", "privkey.pem"}},
		{name: "key file holds a certificate", certPEM: a.certPEM, keyPEM: b.certPEM, wantKey: true, want: []string{"holds a certificate, not a private key"}},
		{
			name: "encrypted key", certPEM: a.certPEM, wantKey: true, want: []string{"encrypted", "openssl pkey"},
			keyPEM: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		},
		{
			name: "damaged certificate", keyPEM: a.keyPEM, wantCert: true, want: []string{"certificate 1", "damaged"},
			certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}),
		},
		{
			name: "damaged key", certPEM: a.certPEM, wantKey: true, want: []string{"parse private key"},
			keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certFile := filepath.Join(dir, "fullchain.pem")
			keyFile := filepath.Join(dir, "privkey.pem")
			if tt.certPEM != nil {
				writeFile(t, dir, "fullchain.pem", tt.certPEM)
			}
			if tt.keyPEM != nil {
				writeFile(t, dir, "privkey.pem", tt.keyPEM)
			}
			src, err := New(Options{TLS: config.TLS{CertFile: certFile, KeyFile: keyFile}, Hostname: "mail.example.test"})
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", src)
			}
			want := tt.want
			if tt.wantCert {
				want = append(want, certFile)
			}
			if tt.wantKey {
				want = append(want, keyFile)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNew_FilePairKeyFormats(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, kind := range []keyKind{keyECDSA, keyECDSASEC1, keyRSA, keyRSAPKCS1, keyEd25519} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			l := ca.issue(t, kind, 90*days, "mail.example.test")
			src := newFileSource(t, l, "mail.example.test", nil)
			cs, err := handshake(serveTLS(t, src.ServerConfig()), &tls.Config{RootCAs: ca.pool, ServerName: "mail.example.test"})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got, want := peerSerial(cs), l.cert.SerialNumber.String(); got != want {
				t.Errorf("served serial %s, want %s", got, want)
			}
			if got, want := src.NotAfter(), l.cert.NotAfter; !got.Equal(want) {
				t.Errorf("NotAfter() = %v, want %v", got, want)
			}
		})
	}
}

func TestFiles_NoSNIGetsHostnameCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	src := newFileSource(t, ca.issue(t, keyECDSA, 90*days, "mail.example.test"), "mail.example.test", nil)
	cfg := src.ServerConfig()
	sni := make(chan string, 1)
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni <- hello.ServerName
		return nil, nil
	}
	_, err := handshake(serveTLS(t, cfg), &tls.Config{
		InsecureSkipVerify: true, // so that no SNI is sent; verified below instead
		VerifyConnection:   verifyFor(ca.pool, "mail.example.test"),
	})
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	if got := <-sni; got != "" {
		t.Errorf("server saw SNI %q, want none", got)
	}
}

// TestFiles_ReloadsChangedFilesWithoutRestart replaces the files the way
// certbot and hand-rolled scripts do and expects the running listener to
// serve the new certificate after the next check, and not before it.
func TestFiles_ReloadsChangedFilesWithoutRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		layout func(t *testing.T) pairLayout
	}{
		{"certbot symlinks in live/", func(t *testing.T) pairLayout { return newCertbotLive(t) }},
		{"regular files renamed over", func(t *testing.T) pairLayout { return newPlainFiles(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := newTestCA(t)
			a := ca.issue(t, keyECDSA, 30*days, "mail.example.test")
			b := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
			files := tt.layout(t)
			files.install(a.certPEM, a.keyPEM)
			clock := newFakeClock()
			logger, logs := newTestLogger()
			src, err := New(Options{
				TLS:      config.TLS{CertFile: files.certFile(), KeyFile: files.keyFile()},
				Hostname: "mail.example.test", Logger: logger, Now: clock.Now,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			addr := serveTLS(t, src.ServerConfig())
			client := &tls.Config{RootCAs: ca.pool, ServerName: "mail.example.test"}

			expect := func(step string, want leaf) {
				t.Helper()
				cs, err := handshake(addr, client)
				if err != nil {
					t.Fatalf("%s: handshake: %v", step, err)
				}
				if got := peerSerial(cs); got != want.cert.SerialNumber.String() {
					t.Errorf("%s: served serial %s, want %s", step, got, want.cert.SerialNumber)
				}
			}
			expect("at start", a)
			files.install(b.certPEM, b.keyPEM)
			expect("before the next check", a)
			clock.Advance(CheckInterval)
			expect("after the next check", b)
			if got, want := src.NotAfter(), b.cert.NotAfter; !got.Equal(want) {
				t.Errorf("NotAfter() = %v, want %v", got, want)
			}
			if got := len(logs.records(t, msgLoaded)); got != 2 {
				t.Errorf("%d %q log lines, want 2 (start, reload)", got, msgLoaded)
			}
		})
	}
}

func TestFiles_BrokenReplacementKeepsServingOld(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	a := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	b := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	c := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	files := newCertbotLive(t)
	files.install(a.certPEM, a.keyPEM)
	clock := newFakeClock()
	logger, logs := newTestLogger()
	src, err := New(Options{
		TLS:      config.TLS{CertFile: files.certFile(), KeyFile: files.keyFile()},
		Hostname: "mail.example.test", Logger: logger, Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr := serveTLS(t, src.ServerConfig())
	client := &tls.Config{RootCAs: ca.pool, ServerName: "mail.example.test"}
	expect := func(step string, want leaf, wantFailures int) {
		t.Helper()
		cs, err := handshake(addr, client)
		if err != nil {
			t.Fatalf("%s: handshake: %v", step, err)
		}
		if got := peerSerial(cs); got != want.cert.SerialNumber.String() {
			t.Errorf("%s: served serial %s, want %s", step, got, want.cert.SerialNumber)
		}
		if got := len(logs.records(t, msgReloadFailed)); got != wantFailures {
			t.Errorf("%s: %d %q log lines, want %d", step, got, msgReloadFailed, wantFailures)
		}
	}

	// B's certificate with A's key: what a botched manual copy leaves.
	files.install(b.certPEM, a.keyPEM)
	clock.Advance(CheckInterval)
	expect("first check of the broken pair", a, 0) // could be certbot half-way through
	clock.Advance(CheckInterval)
	expect("second check, files unchanged", a, 1)
	clock.Advance(CheckInterval)
	expect("third check", a, 1) // logged once, not at every check

	rec := logs.records(t, msgReloadFailed)[0]
	if rec["level"] != "ERROR" || rec[keyCertFile] != files.certFile() || !strings.Contains(rec["error"].(string), "does not match") {
		t.Errorf("reload failure logged as %v, want level ERROR, cert_file %s and the mismatch", rec, files.certFile())
	}
	if err := src.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Reload() = %v, want the mismatch error", err)
	}
	expect("after a failed Reload", a, 1)

	files.install(c.certPEM, c.keyPEM)
	clock.Advance(CheckInterval)
	expect("after a good pair is installed", c, 1)
}

func TestFiles_ReloadAppliesAtOnce(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	a := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	b := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	files := newCertbotLive(t)
	files.install(a.certPEM, a.keyPEM)
	clock := newFakeClock()
	src, err := New(Options{
		TLS:      config.TLS{CertFile: files.certFile(), KeyFile: files.keyFile()},
		Hostname: "mail.example.test", Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr := serveTLS(t, src.ServerConfig())
	client := &tls.Config{RootCAs: ca.pool, ServerName: "mail.example.test"}

	files.install(b.certPEM, b.keyPEM)
	if err := src.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	// The clock has not moved: only Reload can have picked up B.
	cs, err := handshake(addr, client)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got, want := peerSerial(cs), b.cert.SerialNumber.String(); got != want {
		t.Errorf("served serial %s after Reload, want %s", got, want)
	}

	if err := os.Remove(filepath.Join(files.archive, "fullchain2.pem")); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(); err == nil || !strings.Contains(err.Error(), files.certFile()) {
		t.Errorf("Reload() with a dangling symlink = %v, want an error naming %s", err, files.certFile())
	}
	if cs, err = handshake(addr, client); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got, want := peerSerial(cs), b.cert.SerialNumber.String(); got != want {
		t.Errorf("served serial %s after a failed Reload, want %s", got, want)
	}
}

func TestFiles_NotAfterSeesRenewalWithoutHandshake(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	a := ca.issue(t, keyECDSA, 10*days, "mail.example.test")
	b := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	files := newCertbotLive(t)
	files.install(a.certPEM, a.keyPEM)
	clock := newFakeClock()
	src, err := New(Options{
		TLS:      config.TLS{CertFile: files.certFile(), KeyFile: files.keyFile()},
		Hostname: "mail.example.test", Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := src.NotAfter(), a.cert.NotAfter; !got.Equal(want) {
		t.Errorf("NotAfter() = %v, want %v", got, want)
	}
	files.install(b.certPEM, b.keyPEM)
	clock.Advance(CheckInterval)
	if got, want := src.NotAfter(), b.cert.NotAfter; !got.Equal(want) {
		t.Errorf("NotAfter() after renewal = %v, want %v", got, want)
	}
}

func TestPairWarnings_FlagsWhatClientsReject(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	good := ca.issue(t, keyECDSA, 90*days, "mail.example.test")
	now := time.Now()
	tests := []struct {
		name     string
		l        leaf
		leafOnly bool
		hostname string
		now      time.Time
		want     []string // substrings, one per expected warning
	}{
		{name: "fullchain for the hostname", l: good, hostname: "mail.example.test", now: now},
		{name: "expired", l: good, hostname: "mail.example.test", now: good.cert.NotAfter.Add(time.Minute), want: []string{"expired"}},
		{name: "not yet valid", l: good, hostname: "mail.example.test", now: good.cert.NotBefore.Add(-time.Minute), want: []string{"not valid before"}},
		{name: "leaf without intermediate", l: good, leafOnly: true, hostname: "mail.example.test", now: now, want: []string{"use fullchain.pem, not cert.pem"}},
		{name: "hostname not covered", l: good, hostname: "mx.example.test", now: now, want: []string{`does not cover hostname "mx.example.test"`}},
		{name: "no hostname to check", l: good, hostname: "", now: now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert := &tls.Certificate{Certificate: [][]byte{tt.l.cert.Raw, ca.cert.Raw}, Leaf: tt.l.cert}
			if tt.leafOnly {
				cert.Certificate = cert.Certificate[:1]
			}
			got := pairWarnings(cert, tt.hostname, tt.now)
			if len(got) != len(tt.want) {
				t.Fatalf("pairWarnings = %q, want %d warnings containing %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("pairWarnings[%d] = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
