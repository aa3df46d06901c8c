package dnscheck

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_MTASTSRecord(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: testDomain, selector: "sel", kind: dkim.KindEd25519})
	sts := func(records ...string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) { z.TXT["_mta-sts."+testDomain] = records }
	}
	runZoneCases(t, CheckMTASTS, keys, []zoneCase{
		{name: "published, not fetched", want: []string{"OK mtasts-record", "INFO mtasts-not-fetched"}, text: "https://mta-sts.example.test/.well-known/mta-sts.txt"},
		{name: "extension fields", edit: sts("v=STSv1;id=abc123;ext=1;"), want: []string{"OK mtasts-record", "INFO mtasts-not-fetched"}},
		{name: "absent", edit: func(z *resolvetest.Resolver) { delete(z.TXT, "_mta-sts."+testDomain) }, want: []string{"INFO mtasts-missing"}},
		{name: "not STSv1", edit: sts("v=STSv2; id=1"), want: []string{"INFO mtasts-missing"}},
		{name: "no id", edit: sts("v=STSv1;"), want: []string{"ERROR mtasts-syntax"}, text: "id= must be 1 to 32 letters and digits"},
		{name: "bad id", edit: sts("v=STSv1; id=2026-01-01"), want: []string{"ERROR mtasts-syntax"}},
		{name: "id too long", edit: sts("v=STSv1; id=" + strings.Repeat("a", 33)), want: []string{"ERROR mtasts-syntax"}},
		{name: "two records", edit: sts("v=STSv1; id=1", "v=STSv1; id=2"), want: []string{"ERROR mtasts-multiple"}},
		{name: "lookup fails", edit: func(z *resolvetest.Resolver) { z.ServFail["_mta-sts."+testDomain] = true }, want: []string{"ERROR dns-temporary"}},
	})
}

// policyServer serves an MTA-STS policy over HTTPS on loopback with a
// certificate for certName, and returns a client built by PolicyClient
// that trusts the certificate and reaches the server, whatever the port in
// the URL, through the zone's address for the host.
func policyServer(t *testing.T, z *resolvetest.Resolver, certName string, h http.Handler) *http.Client {
	t.Helper()
	cert, pool := selfSigned(t, certName)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := PolicyClient(z, 5*time.Second)
	tr := c.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	dial := dialVia(z)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return dial(ctx, network, net.JoinHostPort(host, port))
	}
	c.Transport = tr
	return c
}

// selfSigned makes a certificate for name and a pool that trusts it.
func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestCheck_MTASTSPolicy(t *testing.T) {
	t.Parallel()
	const good = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
	text := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != policyPath {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, body)
		}
	}
	tests := []struct {
		name     string
		certName string // "" means mta-sts.example.test
		handler  http.Handler
		edit     func(z *resolvetest.Resolver)
		want     []string
		text     string
	}{
		{name: "enforce, covers the MX", handler: text(good), want: []string{"OK mtasts-record", "OK mtasts-policy"},
			text: "mode enforce, max_age 604800, mx mail.example.test"},
		{name: "wildcard, LF line ends", handler: text("version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n"),
			want: []string{"OK mtasts-record", "OK mtasts-policy"}},
		{name: "wildcard covers one label only", handler: text("version: STSv1\nmode: enforce\nmx: *.test\nmax_age: 86400\n"),
			want: []string{"OK mtasts-record", "OK mtasts-policy", "ERROR mtasts-mx-uncovered"}, text: "add `mx: mail.example.test`"},
		{name: "enforce, MX not covered", handler: text(strings.Replace(good, "mx: mail.", "mx: old.", 1)),
			want: []string{"OK mtasts-record", "OK mtasts-policy", "ERROR mtasts-mx-uncovered"}},
		{name: "testing, MX not covered", handler: text("version: STSv1\nmode: testing\nmx: old.example.test\nmax_age: 86400\n"),
			want: []string{"OK mtasts-record", "OK mtasts-policy", "INFO mtasts-mode-testing", "WARN mtasts-mx-uncovered"}},
		{name: "mode none", handler: text("version: STSv1\nmode: none\nmax_age: 86400\n"),
			want: []string{"OK mtasts-record", "OK mtasts-policy", "INFO mtasts-mode-none"}},
		{name: "not found", handler: http.NotFoundHandler(), want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: "HTTP status 404"},
		{name: "redirect is not followed", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == policyPath {
				http.Redirect(w, r, "/elsewhere.txt", http.StatusMovedPermanently)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, good)
		}), want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: "HTTP status 301"},
		{name: "served as HTML", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, good)
		}), want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: `served as "text/html"`},
		{name: "too large", handler: text(good + strings.Repeat("x: y\n", maxPolicySize/5+1)),
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: "larger than 65536 bytes"},
		{name: "certificate for another name", certName: "www.example.test", handler: text(good),
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: "certificate is valid for www.example.test"},
		{name: "policy host does not resolve", handler: text(good), edit: func(z *resolvetest.Resolver) { delete(z.IP, "mta-sts."+testDomain) },
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-unavailable"}, text: "look up mta-sts.example.test: no such host"},
		{name: "bad version and mode", handler: text("version: STSv2\nmode: strict\nmx: mail.example.test\nmax_age: 86400\n"),
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-syntax", "ERROR mtasts-policy-syntax"}, text: `mode "strict" is not enforce, testing or none`},
		{name: "missing fields", handler: text("version: STSv1\nmode: enforce\n"),
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-syntax", "ERROR mtasts-policy-syntax"}, text: "no max_age line"},
		{name: "max_age over a year", handler: text("version: STSv1\nmode: enforce\nmx: mail.example.test\nmax_age: 31557601\n"),
			want: []string{"OK mtasts-record", "ERROR mtasts-policy-syntax"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := goodZone(nil)
			z.IP["mta-sts."+testDomain] = addrs("127.0.0.1")
			if tt.edit != nil {
				tt.edit(z)
			}
			certName := tt.certName
			if certName == "" {
				certName = "mta-sts." + testDomain
			}
			c := &Checker{Resolver: z, Hostname: testHostname, HTTP: policyServer(t, z, certName, tt.handler)}
			rep, err := c.Check(context.Background(), testDomain)
			if err != nil {
				t.Fatal(err)
			}
			if got := levelIDs(rep, CheckMTASTS); !slices.Equal(got, tt.want) {
				t.Errorf("MTA-STS findings = %q, want %q; report:%s", got, tt.want, findings(rep, CheckMTASTS))
			}
			if !strings.Contains(findings(rep, CheckMTASTS), tt.text) {
				t.Errorf("MTA-STS findings do not mention %q; report:%s", tt.text, findings(rep, CheckMTASTS))
			}
		})
	}
}

func TestMXMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"mail.example.com", "mail.example.com", true},
		{"mail.example.com", "MAIL.example.com.", true},
		{"mail.example.com", "mx.example.com", false},
		{"*.example.com", "mail.example.com", true},
		{"*.example.com", "a.mail.example.com", false},
		{"*.example.com", "example.com", false},
	}
	for _, tt := range tests {
		if got := mxMatches(tt.pattern, tt.host); got != tt.want {
			t.Errorf("mxMatches(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

func TestCheck_TLSRPT(t *testing.T) {
	t.Parallel()
	rpt := func(records ...string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) { z.TXT["_smtp._tls."+testDomain] = records }
	}
	runZoneCases(t, CheckTLSRPT, nil, []zoneCase{
		{name: "published", want: []string{"OK tlsrpt-record"}},
		{name: "two destinations", edit: rpt("v=TLSRPTv1;rua=mailto:a@example.test,https://reports.example.test/tls"), want: []string{"OK tlsrpt-record"}},
		{name: "absent", edit: func(z *resolvetest.Resolver) { delete(z.TXT, "_smtp._tls."+testDomain) }, want: []string{"INFO tlsrpt-missing"}},
		{name: "no rua", edit: rpt("v=TLSRPTv1;"), want: []string{"WARN tlsrpt-syntax"}, text: "no rua="},
		{name: "bad scheme", edit: rpt("v=TLSRPTv1; rua=tls@example.test"), want: []string{"WARN tlsrpt-syntax"}, text: "not a mailto: or https: URI"},
		{name: "two records", edit: rpt("v=TLSRPTv1; rua=mailto:a@example.test", "v=TLSRPTv1; rua=mailto:b@example.test"), want: []string{"WARN tlsrpt-multiple"}},
		{name: "lookup fails", edit: func(z *resolvetest.Resolver) { z.Timeout["_smtp._tls."+testDomain] = true }, want: []string{"ERROR dns-temporary"}},
	})
}
