package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testCA issues certificates for tests; names live under example.test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smarthost test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// keyKind selects the key type and PEM encoding of an issued key.
type keyKind string

const (
	keyECDSA     keyKind = "ecdsa"      // PKCS #8, as certbot writes
	keyECDSASEC1 keyKind = "ecdsa-sec1" // "EC PRIVATE KEY"
	keyRSA       keyKind = "rsa"        // PKCS #8
	keyRSAPKCS1  keyKind = "rsa-pkcs1"  // "RSA PRIVATE KEY"
	keyEd25519   keyKind = "ed25519"    // PKCS #8
)

// days is a validity period in days.
const days = 24 * time.Hour

// leaf is an issued certificate with its PEM files.
type leaf struct {
	cert    *x509.Certificate
	certPEM []byte // leaf then CA, like fullchain.pem
	keyPEM  []byte
}

// issue makes a server certificate for names, valid from an hour ago for
// validFor.
func (ca *testCA) issue(t *testing.T, kind keyKind, validFor time.Duration, names ...string) leaf {
	t.Helper()
	var (
		key    crypto.Signer
		keyPEM []byte
		err    error
	)
	switch kind {
	case keyECDSA, keyECDSASEC1:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
		if kind == keyECDSASEC1 {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		}
	case keyRSA, keyRSAPKCS1:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = k
		if kind == keyRSAPKCS1 {
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		}
	case keyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if keyPEM == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validFor).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return leaf{cert: cert, certPEM: certPEM, keyPEM: keyPEM}
}

// certbotLive mimics certbot's layout: files under archive/NAME, and
// live/NAME/{fullchain,privkey}.pem symlinks that a renewal repoints, each
// by an atomic rename of a new symlink.
type certbotLive struct {
	t       *testing.T
	archive string
	live    string
	n       int
}

func newCertbotLive(t *testing.T) *certbotLive {
	t.Helper()
	root := t.TempDir()
	c := &certbotLive{
		t:       t,
		archive: filepath.Join(root, "archive", "mail.example.test"),
		live:    filepath.Join(root, "live", "mail.example.test"),
	}
	for _, d := range []string{c.archive, c.live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *certbotLive) certFile() string { return filepath.Join(c.live, "fullchain.pem") }
func (c *certbotLive) keyFile() string  { return filepath.Join(c.live, "privkey.pem") }

// install writes a new version into archive/ and repoints live/, privkey
// first as certbot does.
func (c *certbotLive) install(certPEM, keyPEM []byte) {
	c.t.Helper()
	c.n++
	for _, f := range []struct {
		base string
		data []byte
	}{{"privkey", keyPEM}, {"fullchain", certPEM}} {
		name := fmt.Sprintf("%s%d.pem", f.base, c.n)
		if err := os.WriteFile(filepath.Join(c.archive, name), f.data, 0o600); err != nil {
			c.t.Fatal(err)
		}
		link := filepath.Join(c.live, f.base+".pem")
		tmp := link + ".new"
		if err := os.Symlink(filepath.Join("..", "..", "archive", "mail.example.test", name), tmp); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			c.t.Fatal(err)
		}
	}
}

// plainFiles is the other common layout: regular files replaced by writing
// a temporary file and renaming it over the old one.
type plainFiles struct {
	t   *testing.T
	dir string
}

func newPlainFiles(t *testing.T) *plainFiles { return &plainFiles{t: t, dir: t.TempDir()} }

func (p *plainFiles) certFile() string { return filepath.Join(p.dir, "fullchain.pem") }
func (p *plainFiles) keyFile() string  { return filepath.Join(p.dir, "privkey.pem") }

func (p *plainFiles) install(certPEM, keyPEM []byte) {
	p.t.Helper()
	for name, data := range map[string][]byte{p.certFile(): certPEM, p.keyFile(): keyPEM} {
		if err := os.WriteFile(name+".tmp", data, 0o600); err != nil {
			p.t.Fatal(err)
		}
		if err := os.Rename(name+".tmp", name); err != nil {
			p.t.Fatal(err)
		}
	}
}

// pairLayout is a directory layout the certificate files can live in.
type pairLayout interface {
	certFile() string
	keyFile() string
	install(certPEM, keyPEM []byte)
}

// serveTLS accepts TLS connections on loopback with cfg, completes each
// handshake and closes the connection. It returns the address to dial.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				tls.Server(c, cfg).Handshake()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake connects to addr and completes a TLS handshake with cfg.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: time.Minute}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// verifyFor returns a VerifyConnection callback that checks the server's
// chain against pool for name; with InsecureSkipVerify it lets a client
// send no SNI and still verify.
func verifyFor(pool *x509.CertPool, name string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name})
		return err
	}
}

// logBuffer collects JSON log lines from a test logger.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// records returns the logged records whose message is msg.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// peerSerial is the serial number of the certificate a handshake saw.
func peerSerial(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return "<none>"
	}
	return cs.PeerCertificates[0].SerialNumber.String()
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
