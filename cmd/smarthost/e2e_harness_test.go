package main

// The harness of the end-to-end tests (e2e_*_test.go): whole smarthost
// servers built from a real configuration file, in this process through
// relay.New or as a separate `smarthost serve` process, with sinks standing
// in for next hops and the real programs (swaks, dkimpy, dnsmasq) as peers.
// Everything listens on 127.0.0.1; nothing resolves a real name: [dns]
// server is a loopback dnsmasq or deadDNS, and every domain is under .test.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/queue"
	"smarthost/relay"
	"smarthost/relay/dkim"
	"smarthost/relay/interop"
	"smarthost/relay/sink"
)

// childEnv, set to "1", makes the test binary act as the smarthost command
// (see TestMain): the crash test runs `smarthost serve` as a process of
// its own that it can kill -9, from the very code under test, without a
// separate `go build`.
const childEnv = "SMARTHOST_E2E_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
	}
	os.Exit(m.Run())
}

const (
	// e2eTimeout bounds every wait of an end-to-end test: a delivery, a
	// server start, a swaks run.
	e2eTimeout = 30 * time.Second
	// deadDNS is the [dns] server of tests that need no DNS: the discard
	// port on loopback, where nothing answers, so a lookup that should not
	// happen fails instead of reaching a real resolver.
	deadDNS = "127.0.0.1:9"
	// e2eHostname is smarthost's name in every test configuration.
	e2eHostname = "mail.e2e.test"
)

// e2eConfig describes one smarthost.toml; [e2eConfig.write] writes it.
// Zero fields get the defaults a test most often wants.
type e2eConfig struct {
	// Dir holds the configuration file, the users file and state_dir.
	Dir string
	// Trusted is trusted_networks; nil writes an empty list (nobody
	// relays without AUTH).
	Trusted      []string
	RelayDomains []string
	Listeners    []e2eListener
	// Users are written to Dir/users with their passwords hashed as
	// `smarthost user add` does.
	Users            map[string]string
	Keys             []e2eKey
	Canonicalization string
	// Transport is the [transport] table, key → next hop.
	Transport map[string]string
	// DNS is [dns] server; "" means deadDNS.
	DNS string
	// Retry is delivery.retry; nil means one hour, so a deferred message
	// stays deferred for the whole test unless flushed.
	Retry []string
	// Hostname is hostname; "" means e2eHostname.
	Hostname string
	// RelayRecipients, RelayRecipientsFile and VerifyRecipients are the
	// top-level keys relay_recipients, relay_recipients_file and
	// verify_recipients.
	RelayRecipients     []string
	RelayRecipientsFile string
	VerifyRecipients    bool
	// Senders is [auth.senders]: user → the addresses it may send as.
	Senders map[string][]string
	// Inbound is the [inbound] table; nil writes none (the defaults).
	Inbound *e2eInbound
}

// e2eInbound is the [inbound] table. Empty fields are not written, so
// they keep their defaults.
type e2eInbound struct {
	SPF, DKIM, DMARC string // off | tag | enforce
	QuarantineHeader string
	DNSBL            []string
	Greylisting      bool
	GreylistDelay    string
}

// e2eListener is one [[listener]]. Address is filled in by whoever opens
// the socket.
type e2eListener struct {
	Name, TLS, Role, Address string
}

// e2eKey is one [[dkim.key]] made by [newKey].
type e2eKey struct {
	Domain, Selector, File string
	// Record is the DNS TXT record value that publishes the public key.
	Record string
}

// recordName is where the key's TXT record lives.
func (k e2eKey) recordName() string { return dkim.RecordName(k.Domain, k.Selector) }

// newKey generates a DKIM key as `smarthost dkim keygen` does.
func newKey(t *testing.T, dir, domain, selector string, kind dkim.Kind) e2eKey {
	t.Helper()
	files, err := dkim.Keygen(dkim.KeygenOptions{Dir: filepath.Join(dir, "dkim"), Domain: domain, Selector: selector, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return e2eKey{Domain: domain, Selector: selector, File: files.PrivateKey, Record: files.Record.String()}
}

func (c e2eConfig) path() string     { return filepath.Join(c.Dir, "smarthost.toml") }
func (c e2eConfig) stateDir() string { return filepath.Join(c.Dir, "state") }

// hostname is the configured hostname.
func (c e2eConfig) hostname() string {
	if c.Hostname != "" {
		return c.Hostname
	}
	return e2eHostname
}

// write writes the configuration file and the users file, replacing what
// an earlier call wrote, and returns the configuration file's path.
func (c e2eConfig) write(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\nstate_dir = %q\n", c.hostname(), c.stateDir())
	fmt.Fprintf(&b, "trusted_networks = %s\nrelay_domains = %s\n", tomlList(c.Trusted), tomlList(c.RelayDomains))
	if len(c.RelayRecipients) > 0 {
		fmt.Fprintf(&b, "relay_recipients = %s\n", tomlList(c.RelayRecipients))
	}
	if c.RelayRecipientsFile != "" {
		fmt.Fprintf(&b, "relay_recipients_file = %q\n", c.RelayRecipientsFile)
	}
	fmt.Fprintf(&b, "verify_recipients = %t\n\n", c.VerifyRecipients)
	b.WriteString("[tls]\nself_signed = true\n\n")
	for _, l := range c.Listeners {
		fmt.Fprintf(&b, "[[listener]]\nname = %q\naddress = %q\ntls = %q\nrole = %q\n\n", l.Name, l.Address, l.TLS, l.Role)
	}
	users := filepath.Join(c.Dir, "users")
	fmt.Fprintf(&b, "[auth]\nusers_file = %q\nmax_failures = 5\n\n", users)
	if len(c.Senders) > 0 {
		b.WriteString("[auth.senders]\n")
		for _, user := range sortedKeys(c.Senders) {
			fmt.Fprintf(&b, "%q = %s\n", user, tomlList(c.Senders[user]))
		}
		b.WriteString("\n")
	}
	if c.Canonicalization != "" || len(c.Keys) > 0 {
		b.WriteString("[dkim]\n")
		if c.Canonicalization != "" {
			fmt.Fprintf(&b, "canonicalization = %q\n", c.Canonicalization)
		}
		for _, k := range c.Keys {
			fmt.Fprintf(&b, "[[dkim.key]]\ndomain = %q\nselector = %q\nprivate_key = %q\n", k.Domain, k.Selector, k.File)
		}
		b.WriteString("\n")
	}
	if len(c.Transport) > 0 {
		b.WriteString("[transport]\n")
		for _, k := range sortedKeys(c.Transport) {
			fmt.Fprintf(&b, "%q = %q\n", k, c.Transport[k])
		}
		b.WriteString("\n")
	}
	retry := c.Retry
	if retry == nil {
		retry = []string{"1h"}
	}
	fmt.Fprintf(&b, "[delivery]\nretry = %s\nconnect_timeout = \"5s\"\ncommand_timeout = \"20s\"\n\n", tomlList(retry))
	dns := c.DNS
	if dns == "" {
		dns = deadDNS
	}
	fmt.Fprintf(&b, "[dns]\nserver = %q\ntimeout = \"5s\"\n", dns)
	if in := c.Inbound; in != nil {
		b.WriteString("\n[inbound]\n")
		for _, kv := range [][2]string{{"spf", in.SPF}, {"dkim", in.DKIM}, {"dmarc", in.DMARC},
			{"quarantine_header", in.QuarantineHeader}, {"greylist_delay", in.GreylistDelay}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "%s = %q\n", kv[0], kv[1])
			}
		}
		if len(in.DNSBL) > 0 {
			fmt.Fprintf(&b, "dnsbl = %s\n", tomlList(in.DNSBL))
		}
		fmt.Fprintf(&b, "greylisting = %t\n", in.Greylisting)
	}

	if err := os.Remove(users); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(c.Users) {
		if err := (auth.UsersFile{Path: users}).Add(name, c.Users[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.path(), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.path()
}

func tomlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// e2eServer is a smarthost running in this process.
type e2eServer struct {
	*relay.Server
	// Config is the path of its configuration file.
	Config string
	stop   func()
}

// startRelay opens a loopback listener for each of c's listeners, writes
// the configuration with their addresses, loads it as serve does and runs
// relay.Server with the listeners passed in. dial, when not nil, replaces
// the outbound dialer. The server stops when the test ends, or earlier
// through [e2eServer.Stop].
func startRelay(t *testing.T, c e2eConfig, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *e2eServer {
	t.Helper()
	return serveRelay(t, c, listenRelay(t, c), dial)
}

// listenRelay opens a loopback listener for each of c's listeners and
// fills in their addresses (c.Listeners is shared with the caller's
// copy), for a test that must know them before the server is configured
// further: a Postfix that relays to it, say. Pass the result to
// [serveRelay].
func listenRelay(t *testing.T, c e2eConfig) map[string]net.Listener {
	t.Helper()
	listeners := make(map[string]net.Listener)
	for i, l := range c.Listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() }) // in case the server never starts
		listeners[l.Name] = ln
		c.Listeners[i].Address = ln.Addr().String()
	}
	return listeners
}

// serveRelay is [startRelay] on listeners already opened by [listenRelay].
func serveRelay(t *testing.T, c e2eConfig, listeners map[string]net.Listener, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *e2eServer {
	t.Helper()
	logger := testLogger(t)
	path := c.write(t)
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load(%s): %v", path, err)
	}
	srv, err := relay.New(relay.Options{Config: cfg, Logger: logger, Listeners: listeners, Dial: dial})
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 5*time.Second) }()
	var once sync.Once
	s := &e2eServer{Server: srv, Config: path}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay.Server.Run: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the server and waits until Run has returned: the listeners and
// the control socket are closed.
func (s *e2eServer) Stop() { s.stop() }

// addr is the loopback address of listener name.
func (s *e2eServer) addr(name string) string { return s.Addr(name).String() }

// waitQueueEmpty waits until the queue holds no message.
func (s *e2eServer) waitQueueEmpty(t *testing.T) {
	t.Helper()
	s.waitQueue(t, "empty", func(l []queue.Summary) bool { return len(l) == 0 })
}

// waitQueue waits until cond holds for the server's queue; what names the
// condition in the failure.
func (s *e2eServer) waitQueue(t *testing.T, what string, cond func([]queue.Summary) bool) []queue.Summary {
	t.Helper()
	deadline := time.Now().Add(e2eTimeout)
	for {
		list := s.Queue().List()
		if cond(list) {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue: %s: not reached within %v; queue: %+v", what, e2eTimeout, list)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger returns a logger whose lines are shown only when the test
// fails, so a failure comes with smarthost's own account of it.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("smarthost log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
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

// startSink runs a recording SMTP server on loopback until the test ends
// and returns it with its address.
func startSink(t *testing.T, opts sink.Options) (*sink.Sink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s, ln.Addr().String()
}

// nextHop is the transport entry that sends mail to addr, e.g.
// "smtp:[127.0.0.1]:2525".
func nextHop(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "smtp:[" + host + "]:" + port
}

// waitMessages waits until s has accepted at least n messages.
func waitMessages(t *testing.T, s *sink.Sink, n int) []sink.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	msgs, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatalf("%v (got %d)", err, len(msgs))
	}
	return msgs
}

// headerOf returns the first value of the named header field of a message,
// unfolded and trimmed, or "".
func headerOf(msg []byte, name string) string {
	if vs := headerValues(msg, name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// headerValues returns every value of the named header field in the
// message's header section, in order, each unfolded and trimmed.
func headerValues(msg []byte, name string) []string {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	var out []string
	lines := strings.Split(string(msg[:end]), "\r\n")
	for i, l := range lines {
		field, value, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(field, name) {
			continue
		}
		for _, cont := range lines[i+1:] {
			if cont == "" || (cont[0] != ' ' && cont[0] != '\t') {
				break
			}
			value += cont
		}
		out = append(out, strings.TrimSpace(value))
	}
	return out
}

// swaksResult is one swaks run.
type swaksResult struct {
	// Exit is swaks' exit status: 0 when the message was accepted, 23 for
	// an error at MAIL, 28 in AUTH and so on (swaks(1), EXIT CODES).
	Exit       int
	Transcript string
}

// Replies returns the server's reply lines in the transcript without
// swaks' direction markers ("<-  ", "<~  ", "<** ", "<~* ").
func (r swaksResult) Replies() []string {
	var out []string
	for _, line := range strings.Split(r.Transcript, "\n") {
		if len(line) > 4 && line[0] == '<' {
			out = append(out, strings.TrimSpace(line[3:]))
		}
	}
	return out
}

// HasReply reports whether a reply line starts with prefix.
func (r swaksResult) HasReply(prefix string) bool {
	for _, l := range r.Replies() {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// runSwaks runs swaks with args, skipping the test when swaks is missing
// (failing under CI=true).
func runSwaks(t *testing.T, args ...string) swaksResult {
	t.Helper()
	bin := interop.Require(t, "swaks")["swaks"]
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--timeout", "20", "--helo", "client.e2e.test"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return swaksResult{0, string(out)}
	case errors.As(err, &ee) && ctx.Err() == nil:
		return swaksResult{ee.ExitCode(), string(out)}
	default:
		t.Fatalf("swaks %q: %v\n%s", args, err, out)
		return swaksResult{}
	}
}

// reserveAddr returns a loopback address nothing listens on at the moment.
// Only for a child process, which must open its listeners itself: the port
// is free when this returns, and another test could take it before the
// child does, which would make the child fail to start, not pass wrongly.
func reserveAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// refusingAddr returns a loopback address that refuses connections for
// the rest of the test: a TCP socket is bound to the port but never
// listens, so connecting gets a reset (ECONNREFUSED), and nothing else can
// take the port meanwhile, as it could if the port were merely free.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// childServer is `smarthost serve` running as a process of its own.
type childServer struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	lines  chan string // every log line, for waitLog
	exited chan struct{}
}

// startChild runs `smarthost serve -config path` as a child process (the
// test binary, see TestMain) and waits until it logs that listener
// listening is listening. The process is killed when the test ends.
func startChild(t *testing.T, path, listening string) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-config", path)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childServer{cmd: cmd, log: &syncBuffer{}, lines: make(chan string, 1<<16), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.log.Write(append(sc.Bytes(), '\n'))
			select {
			case c.lines <- sc.Text():
			default: // nobody waits for lines this late
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("smarthost serve (pid %d) log:\n%s", cmd.Process.Pid, c.log.String())
		}
	})
	c.waitLog(t, "msg=listening listener="+listening+" ")
	return c
}

// waitLog waits for a log line containing substr.
func (c *childServer) waitLog(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(e2eTimeout)
	for {
		select {
		case l := <-c.lines:
			if strings.Contains(l, substr) {
				return
			}
		case <-c.exited:
			t.Fatalf("smarthost serve exited before logging %q:\n%s", substr, c.log.String())
		case <-timeout:
			t.Fatalf("smarthost serve did not log %q within %v:\n%s", substr, e2eTimeout, c.log.String())
		}
	}
}

// kill sends SIGKILL, as kill -9 does, and waits for the process to be
// gone. Killing a process that has exited already is harmless.
func (c *childServer) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// submit sends one message over plain SMTP, as a client in
// trusted_networks does, and returns the queue ID from the 250 reply.
func submit(t *testing.T, addr, from string, to []string, msg string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.e2e.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL FROM:<%s>: %v", from, err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	c.Quit()
	_, id, ok := strings.Cut(resp.StatusText, "queued as ")
	if !ok {
		t.Fatalf("end of DATA: reply %q names no queue ID", resp.StatusText)
	}
	return id
}

// smarthostCmd runs the smarthost command in this process and returns its
// exit status, stdout and stderr.
func smarthostCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}
