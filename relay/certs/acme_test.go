package certs

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smarthost/config"
)

// TestACME_IssuesWithHTTP01AndServesHostnameWithoutSNI runs the whole
// ACME path on loopback: autocert registers with a fake CA, the CA fetches
// the http-01 answer from ServeChallenges, and a client that sends no SNI
// gets the certificate for the hostname.
func TestACME_IssuesWithHTTP01AndServesHostnameWithoutSNI(t *testing.T) {
	t.Parallel()
	ca := newFakeCA(t)
	state := t.TempDir()
	logger, logs := newTestLogger()
	src, err := New(Options{
		TLS: config.TLS{
			ACMEDomains:   []string{"mail.example.test", "mx2.example.test"},
			ACMEEmail:     "postmaster@example.test",
			ACMEDirectory: ca.directoryURL(),
		},
		Hostname: "mail.example.test",
		StateDir: state,
		Logger:   logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, _, _ := ca.stats(); got != 0 {
		t.Fatalf("New placed %d orders, want none before the first handshake", got)
	}
	if !src.NotAfter().IsZero() {
		t.Errorf("NotAfter() before any handshake = %v, want zero", src.NotAfter())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca.setChallengeAddr(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- src.ServeChallenges(ctx, ln) }()

	addr := serveTLS(t, src.ServerConfig())
	noSNI := &tls.Config{
		InsecureSkipVerify: true, // so that no SNI is sent; verified below instead
		VerifyConnection:   verifyFor(ca.ca.pool, "mail.example.test"),
	}
	cs, err := handshake(addr, noSNI)
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	leaf := cs.PeerCertificates[0]
	if orders, alpn, http01 := ca.stats(); orders != 1 || alpn != 0 || http01 != 1 {
		t.Errorf("CA saw %d orders, %d tls-alpn-01 attempts, %d http-01 validations; want 1, 0, 1", orders, alpn, http01)
	}
	ca.mu.Lock()
	contact, terms := ca.contact, ca.termsAgreed
	ca.mu.Unlock()
	if want := []string{"mailto:postmaster@example.test"}; !slices.Equal(contact, want) || !terms {
		t.Errorf("account contact %q, terms agreed %v; want %q, true", contact, terms, want)
	}
	if got := src.NotAfter(); !got.Equal(leaf.NotAfter) {
		t.Errorf("NotAfter() = %v, want %v", got, leaf.NotAfter)
	}
	if got := logs.records(t, msgLoaded); len(got) != 1 || got[0][keySource] != "acme" || got[0][keyNames] != "mail.example.test" {
		t.Errorf("%q log lines = %v, want one for acme and mail.example.test", msgLoaded, got)
	}

	cache := filepath.Join(state, "acme")
	fi, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("cache directory mode %04o, want 0700", perm)
	}
	for _, name := range []string{"acme_account+key", "mail.example.test"} {
		if _, err := os.Stat(filepath.Join(cache, name)); err != nil {
			t.Errorf("cache entry %s: %v", name, err)
		}
	}

	// A name outside acme_domains gets the hostname's certificate, not a
	// failed handshake or a new order.
	cs, err = handshake(addr, &tls.Config{ServerName: "unlisted.example.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake for an unlisted name: %v", err)
	}
	if got, want := peerSerial(cs), leaf.SerialNumber.String(); got != want {
		t.Errorf("unlisted name got serial %s, want the hostname's %s", got, want)
	}
	if orders, _, _ := ca.stats(); orders != 1 {
		t.Errorf("CA saw %d orders after the unlisted name, want still 1", orders)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("ServeChallenges after cancel = %v, want nil", err)
	}
}

func TestACME_ChallengeHandler(t *testing.T) {
	t.Parallel()
	src, err := New(Options{
		TLS:      config.TLS{ACMEDomains: []string{"mail.example.test"}, ACMEDirectory: "http://127.0.0.1:1/unused"},
		Hostname: "mail.example.test",
		StateDir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := src.HTTPHandler()
	if h == nil {
		t.Fatal("HTTPHandler() = nil for ACME")
	}
	tests := []struct {
		name     string
		host     string
		path     string
		wantCode int
	}{
		{"challenge for an unlisted host", "other.example.test", "/.well-known/acme-challenge/abc", http.StatusForbidden},
		{"unknown token", "mail.example.test", "/.well-known/acme-challenge/abc", http.StatusNotFound},
		{"not a challenge: no redirect to a web site we do not have", "mail.example.test", "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "http://"+tt.host+tt.path, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("GET http://%s%s = %d, want %d", tt.host, tt.path, rec.Code, tt.wantCode)
			}
		})
	}
}

func TestACME_ServerNameFallsBackToHostname(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		domains  []string
		hostname string
		sni      string
		want     string
	}{
		{"no SNI gets the hostname", []string{"mx2.example.test", "mail.example.test"}, "mail.example.test", "", "mail.example.test"},
		{"listed name", []string{"mail.example.test", "mx2.example.test"}, "mail.example.test", "mx2.example.test", "mx2.example.test"},
		{"case and trailing dot", []string{"mail.example.test", "mx2.example.test"}, "mail.example.test", "MX2.Example.Test.", "mx2.example.test"},
		{"unlisted name gets the hostname", []string{"mail.example.test"}, "mail.example.test", "other.example.test", "mail.example.test"},
		{"hostname not an ACME domain: first domain", []string{"mx2.example.test", "mx3.example.test"}, "mail.example.test", "", "mx2.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := newACME(Options{
				TLS:      config.TLS{ACMEDomains: tt.domains},
				Hostname: tt.hostname,
				StateDir: t.TempDir(),
				Logger:   discardLogger(),
			})
			if err != nil {
				t.Fatalf("newACME: %v", err)
			}
			if got := a.serverName(tt.sni); got != tt.want {
				t.Errorf("serverName(%q) = %q, want %q", tt.sni, got, tt.want)
			}
		})
	}
}

func TestNew_ACMECacheDirectory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    os.FileMode // 0: the directory does not exist yet
		wantErr string
	}{
		{name: "created 0700"},
		{name: "existing 0700 accepted", mode: 0o700},
		{name: "existing 0755 refused", mode: 0o755, wantErr: "chmod 700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state := t.TempDir()
			cache := filepath.Join(state, "acme")
			if tt.mode != 0 {
				if err := os.Mkdir(cache, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(cache, tt.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			_, err := New(Options{TLS: config.TLS{ACMEDomains: []string{"mail.example.test"}}, Hostname: "mail.example.test", StateDir: state})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), cache) {
					t.Fatalf("New error = %v, want one naming %s and containing %q", err, cache, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			fi, err := os.Stat(cache)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("cache directory mode %04o, want 0700", perm)
			}
		})
	}
}

func TestNew_ACMENeedsStateDir(t *testing.T) {
	t.Parallel()
	_, err := New(Options{TLS: config.TLS{ACMEDomains: []string{"mail.example.test"}}, Hostname: "mail.example.test"})
	if err == nil || !strings.Contains(err.Error(), "state_dir") {
		t.Fatalf("New(acme, no state_dir) error = %v, want one naming state_dir", err)
	}
}

func TestServeChallenges_RefusedWithoutACME(t *testing.T) {
	t.Parallel()
	src := newFileSource(t, newTestCA(t).issue(t, keyECDSA, 90*days, "mail.example.test"), "mail.example.test", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.ServeChallenges(context.Background(), ln); err == nil {
		t.Fatalf("ServeChallenges for files = nil, want an error")
	}
	if _, err := ln.Accept(); err == nil {
		t.Errorf("listener still open after ServeChallenges refused")
	}
}

func TestDropTLSALPN_KeepsEverythingElse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "authorization with both challenges",
			in:   `{"status":"pending","challenges":[{"type":"tls-alpn-01","url":"u1","token":"t"},{"type":"http-01","url":"u2","token":"t"}]}`,
			want: `{"challenges":[{"type":"http-01","url":"u2","token":"t"}],"status":"pending"}`,
		},
		{
			name: "only http-01: unchanged",
			in:   `{"status":"pending","challenges":[{"type":"http-01"}]}`,
			want: `{"status":"pending","challenges":[{"type":"http-01"}]}`,
		},
		{
			name: "order: unchanged",
			in:   `{"status":"pending","authorizations":["a"]}`,
			want: `{"status":"pending","authorizations":["a"]}`,
		},
		{
			name: "pre-RFC combinations: unchanged",
			in:   `{"challenges":[{"type":"tls-alpn-01"},{"type":"http-01"}],"combinations":[[1]]}`,
			want: `{"challenges":[{"type":"tls-alpn-01"},{"type":"http-01"}],"combinations":[[1]]}`,
		},
		{
			name: "not JSON: unchanged",
			in:   `-----BEGIN CERTIFICATE-----`,
			want: `-----BEGIN CERTIFICATE-----`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(dropTLSALPN([]byte(tt.in))); got != tt.want {
				t.Errorf("dropTLSALPN(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
