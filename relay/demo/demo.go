package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/relay"
	"smarthost/relay/dkim"
	"smarthost/relay/sink"
)

// Names used by the demo; .example and .test are reserved (RFC 2606,
// RFC 6761) and never resolved.
const (
	hostname    = "mail.demo.example"
	senderDom   = "demo.example"
	relayDomain = "home.demo.example"
	user        = "demo"
	timeout     = 30 * time.Second
)

// Options configures [Run].
type Options struct {
	// Out receives the step-by-step report.
	Out io.Writer
	// Logger receives smarthost's own log lines; nil discards them.
	Logger *slog.Logger
}

// Run performs every step and returns nil only if all of them passed.
func Run(ctx context.Context, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &report{out: opts.Out}
	dir, err := os.MkdirTemp("", "smarthost-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.step("state directory %s (removed at the end)", dir)

	w, err := setUp(r, dir)
	if err != nil {
		return err
	}
	defer w.internet.Close()
	defer w.home.Close()
	srv, err := startServer(r, dir, w, opts.Logger)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, 5*time.Second) }()
	defer func() { stop(); <-done }()
	r.step("smarthost started: submissions on %s (implicit TLS, AUTH), smtp on %s (mx for %s)",
		srv.Addr("submissions"), srv.Addr("smtp"), relayDomain)

	if err := outbound(ctx, r, srv, w); err != nil {
		return err
	}
	if err := inbound(ctx, r, srv, w); err != nil {
		return err
	}
	fmt.Fprintln(r.out, "\nall steps passed")
	return nil
}

// world is what the demo sets up around smarthost.
type world struct {
	keys           demoKeys
	password       string
	internet, home *sink.Sink
	internetAddr   string
	homeAddr       string
}

// setUp makes the DKIM keys, the user and the two stand-in servers.
func setUp(r *report, dir string) (*world, error) {
	w := &world{}
	var err error
	if w.keys, err = makeKeys(dir); err != nil {
		return nil, r.fail("DKIM keys", err)
	}
	for _, k := range w.keys {
		r.step("DKIM key %s (%s)", k.name, k.kind)
	}
	if w.password, err = randomPassword(); err != nil {
		return nil, err
	}
	usersFile := filepath.Join(dir, "users")
	if err := (auth.UsersFile{Path: usersFile}).Add(user, w.password); err != nil {
		return nil, r.fail("users file", err)
	}
	r.step("user %q with a random password (argon2id) in %s", user, usersFile)
	if w.internet, w.internetAddr, err = startSink(); err != nil {
		return nil, r.fail("receiving server", err)
	}
	if w.home, w.homeAddr, err = startSink(); err != nil {
		w.internet.Close()
		return nil, r.fail("home server", err)
	}
	r.step("recipient's MX (stand-in) listening on %s, with STARTTLS", w.internetAddr)
	r.step("home server (stand-in) listening on %s, with STARTTLS", w.homeAddr)
	return w, nil
}

// startServer writes the configuration and builds smarthost from it, as
// `smarthost serve` does.
func startServer(r *report, dir string, w *world, logger *slog.Logger) (*relay.Server, error) {
	listeners, err := openListeners("submissions", "smtp")
	if err != nil {
		return nil, r.fail("listeners", err)
	}
	cfgPath := filepath.Join(dir, "smarthost.toml")
	text := configText(dir, w.keys, listeners, w.internetAddr, w.homeAddr)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		closeAll(listeners)
		return nil, err
	}
	cfg, _, err := config.Load(cfgPath)
	if err != nil {
		closeAll(listeners)
		return nil, r.fail("configuration", err)
	}
	srv, err := relay.New(relay.Options{Config: cfg, Logger: logger, Listeners: listeners})
	if err != nil {
		return nil, r.fail("smarthost", err)
	}
	return srv, nil
}

// outbound: a phone or laptop submits over implicit TLS with AUTH; the
// message must arrive over TLS with both signatures valid.
func outbound(ctx context.Context, r *report, srv *relay.Server, w *world) error {
	id, err := submit(srv, w.password, outboundMessage())
	if err != nil {
		return r.fail("submission", err)
	}
	r.step("submitted over implicit TLS with AUTH PLAIN: %s", id)
	got, err := w.internet.Wait(ctx, 1)
	if err != nil {
		return r.fail("delivery to the recipient's MX", err)
	}
	out := got[0]
	r.step("delivered to %s from <%s> over %s", strings.Join(out.To, ", "), out.From, orPlain(out.TLS))
	if out.TLS == "" {
		return r.fail("delivery", errors.New("delivered without TLS although the server offered STARTTLS"))
	}
	results, err := dkim.Verify(bytes.NewReader(out.Data), w.keys.lookup)
	if err != nil {
		return r.fail("DKIM verification", err)
	}
	if len(results) != len(w.keys) {
		return r.fail("DKIM verification", fmt.Errorf("%d signatures, want %d", len(results), len(w.keys)))
	}
	for i, v := range results {
		if v.Err != nil {
			return r.fail("DKIM verification", fmt.Errorf("d=%s: %w", v.Domain, v.Err))
		}
		r.step("DKIM signature %d of %d (d=%s) verifies against the key's DNS record", i+1, len(results), v.Domain)
	}
	r.header("the delivered message's header", out.Data)
	return nil
}

// inbound: the Internet sends mail for the relay domain to the mx
// listener; it is forwarded to the home server, not signed by us, and
// relaying anywhere else is refused.
func inbound(ctx context.Context, r *report, srv *relay.Server, w *world) error {
	id, err := sendInbound(srv)
	if err != nil {
		return r.fail("inbound mail", err)
	}
	r.step("inbound mail for user@%s accepted on the mx listener: %s", relayDomain, id)
	got, err := w.home.Wait(ctx, 1)
	if err != nil {
		return r.fail("forwarding to the home server", err)
	}
	if bytes.Contains(got[0].Data, []byte("DKIM-Signature")) {
		return r.fail("forwarding", errors.New("inbound mail was signed by us"))
	}
	r.step("forwarded to the home server %s for %s, unsigned by us", w.homeAddr, strings.Join(got[0].To, ", "))
	if err := refusedRelay(srv); err != nil {
		return r.fail("open-relay check", err)
	}
	r.step("relaying through the mx listener to another domain is refused (554 5.7.1)")
	return nil
}

// report prints numbered steps.
type report struct {
	out io.Writer
	n   int
}

func (r *report) step(format string, args ...any) {
	r.n++
	fmt.Fprintf(r.out, "%2d. %s\n", r.n, fmt.Sprintf(format, args...))
}

func (r *report) header(title string, msg []byte) {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	fmt.Fprintf(r.out, "\n--- %s ---\n%s\n---\n\n", title, strings.ReplaceAll(string(msg[:end]), "\r\n", "\n"))
}

func (r *report) fail(step string, err error) error {
	fmt.Fprintf(r.out, "FAILED: %s: %v\n", step, err)
	return fmt.Errorf("demo: %s: %w", step, err)
}

func orPlain(tls string) string {
	if tls == "" {
		return "plain text"
	}
	return tls
}

// startSink runs a receiving server with STARTTLS on a loopback port.
func startSink() (*sink.Sink, string, error) {
	cert, err := sinkCertificate()
	if err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := sink.New(sink.Options{Hostname: "mx.recipient.example", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	go s.Serve(l)
	return s, l.Addr().String(), nil
}

// openListeners opens one loopback listener per name on a free port; their
// addresses go into the configuration.
func openListeners(names ...string) (map[string]net.Listener, error) {
	m := make(map[string]net.Listener)
	for _, name := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll(m)
			return nil, err
		}
		m[name] = l
	}
	return m, nil
}

func closeAll(m map[string]net.Listener) {
	for _, l := range m {
		l.Close()
	}
}

// configText is the demo's smarthost.toml: the production layout of
// DESIGN.md on loopback, with transport entries instead of DNS.
func configText(dir string, keys demoKeys, listeners map[string]net.Listener, internet, home string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\nstate_dir = %q\n", hostname, filepath.Join(dir, "state"))
	fmt.Fprintf(&b, "trusted_networks = []\nrelay_domains = [%q]\n\n", relayDomain)
	b.WriteString("[tls]\nself_signed = true\n\n")
	fmt.Fprintf(&b, "[[listener]]\nname = \"submissions\"\naddress = %q\ntls = \"implicit\"\nrole = \"submission\"\n\n", listeners["submissions"].Addr())
	fmt.Fprintf(&b, "[[listener]]\nname = \"smtp\"\naddress = %q\ntls = \"starttls\"\nrole = \"mx\"\n\n", listeners["smtp"].Addr())
	fmt.Fprintf(&b, "[auth]\nusers_file = %q\n\n", filepath.Join(dir, "users"))
	b.WriteString("[dkim]\ncanonicalization = \"relaxed/simple\"\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "[[dkim.key]]\ndomain = %q\nselector = %q\nprivate_key = %q\n", senderDom, k.selector, k.file)
	}
	fmt.Fprintf(&b, "\n[transport]\n%q = \"smtp:[%s]:%s\"\n", relayDomain, hostOf(home), portOf(home))
	fmt.Fprintf(&b, "\"*\" = \"smtp:[%s]:%s\"\n\n", hostOf(internet), portOf(internet))
	b.WriteString("[delivery]\nretry = [\"1s\"]\n\n[dns]\nserver = \"127.0.0.1:9\"\n")
	return b.String()
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func outboundMessage() string {
	return "From: Demo User <demo@" + senderDom + ">\r\n" +
		"To: Friend <friend@recipient.example>\r\n" +
		"Subject: Hello from smarthost\r\n" +
		"Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <demo." + fmt.Sprint(time.Now().UnixNano()) + "@" + senderDom + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"This message was submitted over implicit TLS with AUTH,\r\n" +
		"DKIM-signed, queued durably and delivered with STARTTLS.\r\n" +
		"Grüße aus dem Demo.\r\n"
}

// submit sends msg as a mail client would and returns the queue ID from
// the 250 reply.
func submit(srv *relay.Server, password, msg string) (string, error) {
	c, err := smtp.DialTLS(srv.Addr("submissions").String(), &tls.Config{RootCAs: srv.CertPool(), ServerName: hostname})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		return "", err
	}
	if err := c.Mail("demo@"+senderDom, &smtp.MailOptions{Body: smtp.Body8BitMIME}); err != nil {
		return "", err
	}
	if err := c.Rcpt("friend@recipient.example", nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit()
	return queueID(resp.StatusText), nil
}

// queueID extracts the ID from "Ok: queued as ID".
func queueID(text string) string {
	if i := strings.LastIndex(text, " "); i >= 0 {
		return text[i+1:]
	}
	return text
}

func sendInbound(srv *relay.Server) (string, error) {
	c, err := smtp.DialStartTLS(srv.Addr("smtp").String(), &tls.Config{RootCAs: srv.CertPool(), ServerName: hostname})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Mail("someone@sender.example", nil); err != nil {
		return "", err
	}
	if err := c.Rcpt("user@"+relayDomain, nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	io.WriteString(w, "From: someone@sender.example\r\nTo: user@"+relayDomain+"\r\nSubject: inbound\r\n\r\nHello home.\r\n")
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit()
	return queueID(resp.StatusText), nil
}

// refusedRelay checks that the mx listener refuses a recipient outside the
// relay domains.
func refusedRelay(srv *relay.Server) error {
	c, err := smtp.Dial(srv.Addr("smtp").String())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("spammer@sender.example", nil); err != nil {
		return err
	}
	err = c.Rcpt("victim@elsewhere.example", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		return fmt.Errorf("RCPT to another domain got %v, want 554 5.7.1", err)
	}
	return nil
}
