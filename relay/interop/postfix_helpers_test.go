package interop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/relay"
	"smarthost/relay/sink"
)

// testTimeout bounds every wait in these tests: a start, a delivery.
const testTimeout = 30 * time.Second

// testCert is a self-signed certificate for one name, as PEM files and
// as what a Go client or server needs.
type testCert struct {
	CertFile, KeyFile string
	Pair              tls.Certificate
	Pool              *x509.CertPool
}

// newTestCert makes a self-signed ECDSA certificate for name in dir.
func newTestCert(t *testing.T, dir, name string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCert{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(c.CertFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c.Pair, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	c.Pool = x509.NewCertPool()
	c.Pool.AppendCertsFromPEM(certPEM)
	return c
}

// startSink runs a sink on a loopback port until the test ends.
func startSink(t *testing.T, opts sink.Options) (*sink.Sink, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(opts)
	done := make(chan struct{})
	go func() {
		s.Serve(l)
		close(done)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s, l.Addr().String()
}

// smarthostUser is the home server's account on the smarthost of
// [startSmarthost].
const smarthostUser, smarthostPassword = "home", "correct horse battery staple"

// startSmarthost runs smarthost in this process, configured as the home
// server's relay: a submissions listener (implicit TLS, AUTH required,
// nobody trusted) with one user, and every recipient routed to next.
// It returns the submissions address.
func startSmarthost(t *testing.T, cert testCert, next string) string {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := (auth.UsersFile{Path: users}).Add(smarthostUser, smarthostPassword); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(next)
	text := fmt.Sprintf(`hostname = "smarthost.test"
state_dir = %q
trusted_networks = []
relay_domains = []

[tls]
cert_file = %q
key_file = %q

[[listener]]
name = "submissions"
address = %q
tls = "implicit"
role = "submission"

[auth]
users_file = %q

[transport]
"*" = "smtp:[%s]:%s"

[delivery]
retry = ["1h"]

[dns]
server = "127.0.0.1:9"
`, filepath.Join(dir, "state"), cert.CertFile, cert.KeyFile, ln.Addr(), users, host, port)
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		ln.Close()
		t.Fatalf("config.Load: %v", err)
	}
	logs := &syncBuffer{}
	srv, err := relay.New(relay.Options{
		Config:    cfg,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Listeners: map[string]net.Listener{"submissions": ln},
	})
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay.Server.Run: %v", err)
		}
		if t.Failed() {
			t.Logf("smarthost log:\n%s", logs.String())
		}
	})
	return srv.Addr("submissions").String()
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// submission is one SMTP transaction for [send].
type submission struct {
	From string
	To   []string
	Msg  string
	// StartTLS, when set, is used for STARTTLS before MAIL.
	StartTLS *tls.Config
}

// send runs s against addr and returns the error of each RCPT (nil when
// accepted) and the error of DATA (when any RCPT was accepted).
func send(t *testing.T, addr string, s submission) (rcptErrs []error, dataErr error) {
	t.Helper()
	var c *smtp.Client
	var err error
	if s.StartTLS != nil {
		c, err = smtp.DialStartTLS(addr, s.StartTLS)
	} else {
		c, err = smtp.Dial(addr)
	}
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Mail(s.From, nil); err != nil {
		t.Fatalf("MAIL FROM:<%s>: %v", s.From, err)
	}
	accepted := 0
	for _, to := range s.To {
		err := c.Rcpt(to, nil)
		rcptErrs = append(rcptErrs, err)
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		return rcptErrs, nil
	}
	w, err := c.Data()
	if err != nil {
		return rcptErrs, err
	}
	if _, err := io.WriteString(w, s.Msg); err != nil {
		return rcptErrs, err
	}
	if err := w.Close(); err != nil {
		return rcptErrs, err
	}
	c.Quit()
	return rcptErrs, nil
}

// message is a small RFC 5322 message with CRLF line ends.
func message(from, to, subject, body string) string {
	return strings.Join([]string{
		"From: " + from,
		"To: " + to,
		"Subject: " + subject,
		"Date: " + time.Now().Format(time.RFC1123Z),
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.org>",
		"",
		body,
		"",
	}, "\r\n")
}

// waitQueue polls the instance's queue until cond holds, and fails the
// test after testTimeout.
func waitQueue(t *testing.T, p *Postfix, what string, cond func([]QueuedMessage) bool) []QueuedMessage {
	t.Helper()
	var q []QueuedMessage
	if !poll(testTimeout, func() bool { q = p.Queue(t); return cond(q) }) {
		t.Fatalf("postfix queue: %s: not reached within %v; queue: %+v\nlog:\n%s", what, testTimeout, q, p.Log())
	}
	return q
}
