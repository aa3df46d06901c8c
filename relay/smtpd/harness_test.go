package smtpd

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/queue"
	"smarthost/relay/dkim"
)

// memSpool is an in-memory Spool for session tests (production uses the
// durable queue). It can be told to fail.
type memSpool struct {
	mu        sync.Mutex
	seq       int
	committed []memMessage
	aborted   int
	failWrite error
	failComm  error
}

type memMessage struct {
	ID     string
	Env    queue.Envelope
	Header []byte // prepended (DKIM-Signature, Received)
	Data   []byte // as received, normalized
}

func (m *memSpool) Create() (Draft, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return &memDraft{spool: m, id: queue.ID(fmt.Sprintf("TESTID%04d", m.seq))}, nil
}

func (m *memSpool) messages() []memMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]memMessage(nil), m.committed...)
}

type memDraft struct {
	spool *memSpool
	id    queue.ID
	buf   bytes.Buffer
	done  bool
}

func (d *memDraft) ID() queue.ID { return d.id }

func (d *memDraft) Write(p []byte) (int, error) {
	if d.spool.failWrite != nil {
		return 0, d.spool.failWrite
	}
	return d.buf.Write(p)
}

func (d *memDraft) Commit(env queue.Envelope, header []byte) error {
	if d.spool.failComm != nil {
		return d.spool.failComm
	}
	d.spool.mu.Lock()
	defer d.spool.mu.Unlock()
	d.done = true
	d.spool.committed = append(d.spool.committed, memMessage{ID: string(d.id), Env: env, Header: append([]byte(nil), header...), Data: append([]byte(nil), d.buf.Bytes()...)})
	return nil
}

func (d *memDraft) Abort() {
	if d.done {
		return
	}
	d.done = true
	d.spool.mu.Lock()
	d.spool.aborted++
	d.spool.mu.Unlock()
}

// fakeAuth accepts users[name] == password and bans after maxFailures.
type fakeAuth struct {
	mu          sync.Mutex
	users       map[string]string
	maxFailures int
	failures    map[netip.Addr]int
	checks      int
}

func (f *fakeAuth) Authenticate(ip netip.Addr, user, pass string) AuthResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures[ip] >= f.maxFailures {
		return AuthResult{Err: auth.ErrBanned}
	}
	f.checks++
	if pw, ok := f.users[user]; ok && pw == pass {
		return AuthResult{}
	}
	f.failures[ip]++
	return AuthResult{Err: auth.ErrInvalidCredentials, NewBan: f.failures[ip] >= f.maxFailures, BanUntil: "later"}
}

func (f *fakeAuth) Banned(ip netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures[ip] >= f.maxFailures
}

// senderMap allows user → exact addresses.
type senderMap map[string][]string

func (m senderMap) Allowed(user, addr string) bool {
	allowed, listed := m[user]
	if !listed {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(a, addr) {
			return true
		}
	}
	return false
}

// domainSet is a Destinations for tests: exact domains and addresses.
type domainSet map[string]bool

func (d domainSet) IsRelayDestination(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	return d[strings.ToLower(addr)] || d[strings.ToLower(addr[at+1:])]
}

// testDKIM is a real key table with one Ed25519 key for example.com; the
// selector "test" record is returned for verification.
func testDKIM(t *testing.T) (*dkim.Table, dkim.Record) {
	t.Helper()
	files, err := dkim.Keygen(dkim.KeygenOptions{Dir: t.TempDir(), Domain: "example.com", Selector: "test", Kind: dkim.KindEd25519})
	if err != nil {
		t.Fatal(err)
	}
	pattern, _ := config.ParseAddressPattern("*@example.com")
	table, err := dkim.Load(config.DKIM{Canonicalization: "relaxed/simple", Keys: []config.DKIMKey{
		{Domain: "example.com", Selector: "test", PrivateKey: files.PrivateKey, Sign: []config.AddressPattern{pattern}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return table, files.Record
}

// env is one test server with its fakes.
type env struct {
	t      *testing.T
	srv    *Server
	addr   string
	spool  *memSpool
	auth   *fakeAuth
	record dkim.Record
	logs   *syncBuffer
	certs  *x509.CertPool
}

type envOptions struct {
	role    config.Role
	tls     config.TLSMode
	trusted []string
	limits  func(*config.Limits)
	senders senderMap
	// options edits the session options last, e.g. to add mx policy.
	options func(*Options)
}

// startServer runs a listener of the given role on 127.0.0.1 with fakes
// around it. The client's 127.0.0.1 is untrusted unless listed.
func startServer(t *testing.T, eo envOptions) *env {
	t.Helper()
	cfg := config.Default()
	limits := cfg.Limits
	if eo.limits != nil {
		eo.limits(&limits)
	}
	e := &env{
		t:     t,
		spool: &memSpool{},
		auth:  &fakeAuth{users: map[string]string{"alice": "secret"}, maxFailures: 3, failures: map[netip.Addr]int{}},
		logs:  &syncBuffer{},
	}
	table, record := testDKIM(t)
	e.record = record
	var trusted []netip.Prefix
	for _, p := range eo.trusted {
		trusted = append(trusted, netip.MustParsePrefix(p))
	}
	opts := Options{
		Hostname:        "mail.example.org",
		Limits:          limits,
		TrustedNetworks: trusted,
		Destinations:    domainSet{"example.com": true, "special@example.net": true},
		Auth:            e.auth,
		Senders:         eo.senders,
		DKIM:            table,
		Spool:           e.spool,
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) },
	}
	if eo.options != nil {
		eo.options(&opts)
	}
	if eo.tls == "" {
		eo.tls = config.TLSNone
	}
	var tlsConf *tls.Config
	if eo.tls != config.TLSNone {
		cert, pool := selfSigned(t)
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		e.certs = pool
	}
	srv, err := New(Listener{Name: "test", Role: eo.role, TLS: eo.tls}, tlsConf, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	e.srv, e.addr = srv, l.Addr().String()
	return e
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.example.org"},
		DNSNames:     []string{"mail.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func (e *env) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.certs, ServerName: "mail.example.org"}
}

// dialogue is a raw SMTP client for protocol tests: it writes exactly the
// bytes given and reads whole (multi-line) replies.
type dialogue struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (e *env) dial() *dialogue {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	d := &dialogue{t: e.t, conn: c, r: bufio.NewReader(c)}
	d.conn.SetDeadline(time.Now().Add(10 * time.Second))
	return d
}

// dialTLS connects with implicit TLS.
func (e *env) dialTLS() *dialogue {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.addr, e.clientTLS())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	d := &dialogue{t: e.t, conn: c, r: bufio.NewReader(c)}
	d.conn.SetDeadline(time.Now().Add(10 * time.Second))
	return d
}

// startTLS upgrades a dialogue after a 220 reply to STARTTLS.
func (d *dialogue) startTLS(conf *tls.Config) {
	d.t.Helper()
	tc := tls.Client(d.conn, conf)
	if err := tc.Handshake(); err != nil {
		d.t.Fatalf("STARTTLS handshake: %v", err)
	}
	d.conn, d.r = tc, bufio.NewReader(tc)
}

func (d *dialogue) send(raw string) {
	d.t.Helper()
	if _, err := io.WriteString(d.conn, raw); err != nil {
		d.t.Fatalf("write %q: %v", raw, err)
	}
}

// reply reads one complete reply and returns its lines joined by "\n".
func (d *dialogue) reply() string {
	d.t.Helper()
	var lines []string
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("reading reply (after %q): %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect sends a command (if not empty) and checks the reply's start.
func (d *dialogue) expect(cmd, wantPrefix string) string {
	d.t.Helper()
	if cmd != "" {
		d.send(cmd + "\r\n")
	}
	got := d.reply()
	if !strings.HasPrefix(got, wantPrefix) {
		d.t.Fatalf("%q: reply %q, want prefix %q", cmd, got, wantPrefix)
	}
	return got
}

// hello reads the greeting and sends EHLO.
func (d *dialogue) hello() string {
	d.t.Helper()
	d.expect("", "220 mail.example.org ESMTP")
	return d.expect("EHLO client.example.net", "250-")
}

// login authenticates with AUTH PLAIN.
func (d *dialogue) login(user, pass string) string {
	d.t.Helper()
	d.send("AUTH PLAIN " + plain(user, pass) + "\r\n")
	return d.reply()
}

func plain(user, pass string) string {
	return b64("\x00" + user + "\x00" + pass)
}

// syncBuffer is a goroutine-safe log sink.
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
